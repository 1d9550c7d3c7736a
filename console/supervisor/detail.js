// The call detail drawer: one call's facts, its assignments with each deadline, and the full timeline (the event
// log). Opened from the call log and from any drill-down row; read-only, with one button: close.
import { evidenceSection } from "/shared/evidence.js";
import { t } from "/shared/i18n.js";
import { h } from "/shared/dom.js";
import { RUNNING_CLOCKS, escalationText, fmtDuration, fmtNumber, toDate } from "/shared/format.js";
import { milestoneTable } from "/shared/milestones.js";
import { $, S, api, categoryName, errorText, fmt, now, targetName, tick, townshipName, tt } from "/supervisor/common.js";

const listeners = new Set();
let detail = null;

/** Call `fn(id)` whenever the open call changes (null: closed). */
export function onSelect(fn) {
  listeners.add(fn);
}

export async function openCall(id) {
  S.selected = id;
  history.replaceState(null, "", `${location.pathname}${location.search}#${id}`);
  for (const fn of listeners) fn(id);
  detail = null;
  render();
  await reloadDetail();
}

export function closeCall() {
  S.selected = null;
  detail = null;
  history.replaceState(null, "", location.pathname + location.search);
  for (const fn of listeners) fn(null);
  render();
}

export async function reloadDetail() {
  const id = S.selected;
  if (!id) return;
  let got;
  try {
    got = await api(`/api/v1/calls/${id}`);
  } catch (e) {
    got = { error: e };
  }
  if (S.selected !== id) return; // another call was opened meanwhile
  detail = got;
  render();
}

/** The live 超时 marker of the assignment's earliest running clock (shown once it passes). */
function firstRunning(a) {
  const kinds = ["ack", "arrive", "resolve"].filter((k) => running(a, k) && a[`${k}_due`]);
  const due = kinds.map((k) => toDate(a[`${k}_due`])).sort((x, y) => x - y)[0];
  return due ? h("b", { class: "mark mark-overdue", hidden: true, dataset: { overdueSince: due.toISOString() } }) : null;
}

/** Was this escalation voided by a later action whose acted time met its rung (voids_escalations)? */
function voided(e, timeline) {
  const b = e.body || {};
  return timeline.some((x) => x.assignment_id === e.assignment_id && x.seq > e.seq
    && ((x.body?.voids_escalations || {})[b.deadline_kind] || []).includes(b.level));
}

function timelineExtra(e, timeline) {
  const b = e.body || {};
  const out = [];
  if (e.type === "assignment.escalated" && voided(e, timeline)) out.push(h("span", { class: "voided" }, tt("sv.voided")));
  if (b.acted_at) out.push(h("span", { class: "acted" }, " ", tt("sv.acted", { t: fmt(b.acted_at), r: fmt(b.received_at || e.at) })));
  if (b.acted_at_adjusted) out.push(h("span", { class: "adjusted" }, tt("sv.adjusted")));
  return out;
}

function timelineText(e, townshipId) {
  const b = e.body || {};
  switch (e.type) {
    case "call.created": return [b.address, b.description].filter(Boolean).join(" · ");
    case "assignment.dispatched": return targetName(b.target, townshipId);
    case "assignment.arrived": return b.lat !== null && b.lat !== undefined ? `${b.lat}, ${b.lon}` : "";
    case "assignment.reported": return b.result || "";
    case "assignment.declined":
      return [b.reason, b.suggested_target ? `→ ${targetName(b.suggested_target, townshipId)}` : ""].filter(Boolean).join(" ");
    case "assignment.transferred": return `→ ${targetName(b.to_target, townshipId)}`;
    case "assignment.escalated":
      // the department's time past its deadline (overdue_ms), not the hub's delay in writing it (delay_ms)
      return tt("sv.esc", { kind: tt(`sv.k.${b.deadline_kind}`), esc: escalationText(b.level),
                            d: fmtDuration(b.overdue_ms ?? b.lateness_ms ?? 0) });
    case "call.visited":
      return [tt("sv.visit", { resolved: tt(b.resolved ? "sv.resolved" : "sv.unresolved"), s: b.satisfaction }), b.comment]
        .filter(Boolean).join(" · ");
    case "call.noted": case "assignment.nudged": return b.text || "";
    case "assignment.alarm_handled": return `${tt(`sv.k.${b.deadline_kind}`)} ${escalationText(b.level)}`;
    case "notice.sent": case "notice.failed":
      return [tt(`chan.${b.channel}`), b.recipient, b.level ? escalationText(b.level) : "",
        e.type === "notice.failed" && !b.final ? tt("sv.noticeRetry") : ""].filter(Boolean).join(" · ");
    default: return b.reason || "";
  }
}

/** Is this kind's clock still running on the assignment (the call open)? */
function running(a, kind) {
  const open = detail && ["intake", "dispatched", "in_progress", "review"].includes(detail.state);
  return open && (RUNNING_CLOCKS[a.state] || []).includes(kind);
}

function render() {
  const box = $("detail");
  box.hidden = !S.selected;
  document.body.classList.toggle("has-detail", Boolean(S.selected));
  const closeBtn = h("button", { type: "button", class: "plain", id: "detail-close", onclick: closeCall }, tt("sv.close"));
  const c = detail;
  if (!S.selected) return box.replaceChildren();
  if (!c) return box.replaceChildren(h("div", { class: "detail-head" }, h("span", { class: "state" }, tt("st.loading")), closeBtn));
  if (c.error) {
    return box.replaceChildren(h("div", { class: "detail-head" }, h("span", { class: "bad" }, errorText(c.error)), closeBtn));
  }
  const tid = c.township_id;
  const field = (label, value) => (value === null || value === undefined || value === "" ? null
    : h("div", { class: "field" }, h("dt", {}, label), h("dd", {}, value)));
  // One card per assignment: who and how far, then 响应 / 报到 / 办结 with actual time, deadline and overdue side
  // by side (shared/milestones.js), then the result or reason as a paragraph of its own (never a narrow column).
  const callOpen = ["intake", "dispatched", "in_progress", "review"].includes(c.state);
  const assignment = (a) => h("li", { class: "asg-card", dataset: { assignment: a.id } },
    h("div", { class: "asg-head" }, h("strong", {}, targetName(a.target, tid)),
      h("span", { class: `part as-${a.state}` }, tt(`asg.${a.state}`)),
      h("span", { class: "muted small" }, tt("sv.dispatchedAt", { t: fmt(a.dispatched_at) })),
      running(a, "ack") || running(a, "arrive") || running(a, "resolve") ? firstRunning(a) : null),
    milestoneTable(a, { now: now(), callOpen }),
    a.result || a.decline_reason ? h("p", { class: "asg-result" }, h("span", { class: "muted" },
      tt(a.result ? "sv.a.resultL" : "sv.a.reasonL")), a.result || a.decline_reason) : null);
  box.replaceChildren(
    h("div", { class: "detail-head" },
      h("div", {}, h("span", { class: "mono" }, fmtNumber(c.number, S.ref)), " · ", townshipName(tid), " · ",
        categoryName(c.category), " · ", h("span", { class: `prio prio-${c.priority}` }, tt(`prio.${c.priority}`)), " · ",
        h("span", { class: `cs cs-${c.state}` }, tt(`call.${c.state}`))),
      closeBtn),
    h("h2", {}, c.title),
    h("dl", { class: "fields" },
      field(tt("sv.f.address"), c.address), field(tt("sv.f.description"), c.description),
      field(tt("sv.f.source"), c.source ? tt(`src.${c.source}`) : ""),
      field(tt("sv.f.reporter"), [c.reporter_name, c.reporter_phone].filter(Boolean).join(" ")),
      field(tt("sv.f.created"), fmt(c.created_at)), field(tt("sv.f.closed"), c.closed_at ? fmt(c.closed_at) : ""),
      field(tt("sv.f.visit"), c.satisfaction ? tt("sv.visit", { resolved: tt(c.resolved ? "sv.resolved" : "sv.unresolved"), s: c.satisfaction }) : ""),
      field(tt("sv.f.cancel"), c.cancel_reason)),
    evidenceSection(c.attachments || [], { label: (a) => { // null without photos: "" adds nothing
      const asg = (c.assignments || []).find((x) => x.id === a.assignment_id);
      return [t(`ev.step.${a.step}`), asg ? targetName(asg.target, tid) : ""].filter(Boolean).join(" · ");
    } }) || "",
    h("h3", {}, tt("sv.assignments")),
    h("ul", { class: "asg-cards" }, (c.assignments || []).map(assignment)),
    h("h3", {}, tt("sv.timeline")),
    h("ol", { class: "timeline" }, (c.timeline || []).map((e) => h("li", { dataset: { type: e.type, seq: e.seq } },
      h("span", { class: "mono seq" }, `#${e.seq}`),
      h("span", { class: "mono" }, fmt(e.at)),
      h("strong", {}, tt(`ev.${e.type}`)),
      h("span", { class: "who" }, e.actor && e.actor.role === "system" ? tt("sv.system") : (e.actor && e.actor.name) || ""),
      h("span", { class: "text" }, timelineText(e, tid), ...timelineExtra(e, c.timeline || []))))),
  );
  tick();
}
