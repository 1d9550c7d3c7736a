// The detail view of one call (#/call/<id>): my part with its actions, the call, its timeline; cached for offline.
import { h } from "/shared/dom.js";
import { escalationText, fmtDuration } from "/shared/format.js";
import { $, S, api, callNumber, categoryName, fmtTime, persist, save, targetName } from "./state.js";
import { tt } from "./strings.js";
import { mergeCalls } from "./sync.js";
import { render } from "./list.js";
import { Alerts } from "./alerts.js";
import { effectiveState, pendingFor } from "./outbox.js";
import { actionButtons, dueBlock, roleChip, tickDue } from "./card.js";
import { evidenceSection } from "/shared/evidence.js";

// -- detail view ---------------------------------------------------------------------------------------

let detailState = { id: null, data: null, cached: false, error: null };

export async function loadDetail(callId) {
  try {
    const data = await api(`/api/v1/calls/${callId}`);
    S.details[callId] = data;
    const keys = Object.keys(S.details);
    for (const k of keys.slice(0, Math.max(0, keys.length - 20))) delete S.details[k];
    save("details", S.details);
    mergeCalls([data]);
    persist();
    if (S.view === callId) detailState = { id: callId, data, cached: false, error: null };
  } catch (e) {
    if (S.view !== callId) return;
    const cached = S.details[callId];
    detailState = { id: callId, data: cached || null, cached: !!cached,
                    error: e.status === 404 ? tt("li.notFound") : cached ? null : tt("li.loadFailed") };
  }
  render();
}

function field(label, value, cls = "") {
  if (value === null || value === undefined || value === "") return null;
  return h("div", { class: `field ${cls}` }, h("dt", {}, label), h("dd", {}, value));
}

function timelineText(e) {
  const b = e.body || {};
  switch (e.type) {
    case "assignment.dispatched":
      return [targetName(b.target), b.transferred_from ? "↪" : ""].join(" ");
    case "assignment.arrived":
      return b.lat !== null && b.lat !== undefined ? tt("li.loc", { lat: b.lat, lon: b.lon }) : "";
    case "assignment.reported": return b.result || "";
    case "assignment.declined":
      return [b.reason, b.suggested_target ? tt("li.suggest", { target: targetName(b.suggested_target) }) : ""]
        .filter(Boolean).join(" · ");
    case "assignment.transferred": return [`→ ${targetName(b.to_target)}`, b.reason].filter(Boolean).join(" · ");
    case "call.lead_changed": return [targetName(b.target), b.reason].filter(Boolean).join(" · ");
    case "assignment.escalated":
      return tt("li.esc", { kind: tt(`li.due.${b.deadline_kind}`), esc: escalationText(b.level),
                            d: fmtDuration(b.overdue_ms ?? b.lateness_ms ?? 0) });
    case "call.noted": return b.text || "";
    case "assignment.nudged": return b.text || "";
    case "assignment.alarm_handled": return `${tt(`li.due.${b.deadline_kind}`)} · ${escalationText(b.level)}`;
    case "notice.sent": case "notice.failed":
      return [tt(`li.ch.${b.channel}`), b.recipient, b.error].filter(Boolean).join(" · ");
    case "call.visited": return b.comment || "";
    default: return b.reason || "";
  }
}

export function renderDetail() {
  const box = $("detail");
  const { data, cached, error } = detailState;
  const mine = [...S.asg.values()].filter((a) => a.call_id === S.view);
  const call = data || (mine[0] && { ...mine[0].call, assignments: [], timeline: [] });
  if (!call) {
    box.replaceChildren(h("p", { class: "empty" }, error || "…"));
    return;
  }
  const prio = call.priority || "normal";
  const reporter = [call.reporter_name, call.reporter_phone].filter(Boolean).join(" ");
  const nodes = [];
  if (cached) nodes.push(h("p", { class: "note" }, tt("li.cachedNote")));
  if (error) nodes.push(h("p", { class: "note bad" }, error));
  nodes.push(h("div", { class: "detail-top" },
    h("span", { class: `prio prio-${prio}` }, tt(`li.prio.${prio}`)),
    h("span", { class: "cat" }, categoryName(call.category)),
    h("span", { class: "num" }, callNumber(call.number))));
  nodes.push(h("h1", { class: "detail-title" }, call.title || ""));
  for (const a of mine) {
    nodes.push(h("section", { class: `mine st-${effectiveState(a)}`, dataset: { assignment: a.id } },
      h("div", { class: "card-state" }, h("span", { class: "state" }, tt(`asg.${effectiveState(a)}`)), roleChip(a),
        pendingFor(a.id).some((p) => p.state === "pending") ? h("span", { class: "queued" }, tt("li.queuedChip")) : null),
      dueBlock(a),
      actionButtons(a),
      h("dl", { class: "fields small" },
        field(tt("li.due.ack"), fmtTime(a.ack_due)), field(tt("li.due.arrive"), fmtTime(a.arrive_due)),
        field(tt("li.due.resolve"), fmtTime(a.resolve_due)),
        field(tt("li.f.ackAt"), a.acknowledged_at ? fmtTime(a.acknowledged_at) : ""),
        field(tt("li.f.arriveAt"), a.on_scene_at ? fmtTime(a.on_scene_at) : ""),
        field(tt("li.f.reportAt"), a.reported_at ? fmtTime(a.reported_at) : ""),
        field(tt("li.f.result"), a.result), field(tt("li.f.decline"), a.decline_reason))));
  }
  nodes.push(h("dl", { class: "fields" },
    field(tt("li.f.address"), call.address),
    field(tt("li.f.description"), call.description, "wide"),
    field(tt("li.f.source"), call.source ? tt(`li.src.${call.source}`) : ""),
    field(tt("li.f.reporter"), reporter),
    field(tt("li.f.callState"), call.state ? tt(`call.${call.state}`) : ""),
    field(tt("li.f.dispatched"), fmtTime(call.created_at))));
  const evidence = evidenceSection((data && data.attachments) || []);
  if (evidence) nodes.push(evidence);
  const timeline = (data && data.timeline) || [];
  if (timeline.length) {
    nodes.push(h("h2", { class: "section-title" }, tt("li.f.timeline")));
    nodes.push(h("ol", { class: "timeline" }, [...timeline].reverse().map((e) => h("li", { dataset: { type: e.type } },
      h("div", { class: "tl-head" }, h("strong", {}, tt(`li.ev.${e.type}`)),
        h("span", { class: "tl-time" }, fmtTime(e.at))),
      h("div", { class: "tl-who" }, e.actor && e.actor.role === "system" ? tt("li.system") : (e.actor && e.actor.name) || ""),
      timelineText(e) ? h("div", { class: "tl-text" }, timelineText(e)) : null))));
  }
  box.replaceChildren(...nodes);
}

export function go(callId) {
  location.hash = callId ? `#/call/${callId}` : "";
}

export function route() {
  const m = /^#\/call\/([0-9a-f-]{36})$/.exec(location.hash);
  const id = m ? m[1] : null;
  S.view = id;
  $("list-view").hidden = !!id;
  $("detail-view").hidden = !id;
  if (id) {
    for (const a of S.asg.values()) if (a.call_id === id) Alerts.stop(a.id);
    detailState = { id, data: S.details[id] || null, cached: !!S.details[id], error: null };
    renderDetail();
    tickDue();
    loadDetail(id);
    window.scrollTo(0, 0);
  } else {
    render();
  }
}
