// The call detail drawer: one call's facts, its assignments with each deadline, and the full timeline (the event
// log). Opened from the call log and from any drill-down row; read-only, with one button: close.
import { evidenceSection } from "/shared/evidence.js";
import { t } from "/shared/i18n.js";
import { h } from "/shared/dom.js";
import { RUNNING_CLOCKS, escalationText, fmtDuration, fmtNumber, overdueText, toDate } from "/shared/format.js";
import { $, S, api, categoryName, errorText, fmt, short, targetName, tick, townshipName, tt } from "/supervisor/common.js";

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

/** When it happened, and under it the deadline it had (red with how late when missed). */
function timeCell(doneAt, due, running = false) {
  return h("td", { class: "mono" }, short(doneAt), lateness(doneAt, due),
    running && !doneAt ? h("b", { class: "mark mark-overdue", hidden: true, dataset: { overdueSince: toDate(due).toISOString() } }) : null,
    due ? h("div", { class: "due small" }, tt("sv.dueAt", { t: short(due) })) : null);
}

function lateness(doneAt, due) {
  if (!due || !doneAt) return null;
  const late = Date.parse(doneAt) - Date.parse(due);
  return late > 0 ? h("span", { class: "late" }, ` ${overdueText(late)}`) : null;
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
  const assignment = (a) => h("tr", { dataset: { assignment: a.id } },
    h("td", {}, targetName(a.target, tid)),
    h("td", {}, h("span", { class: `part as-${a.state}` }, tt(`asg.${a.state}`))),
    h("td", { class: "mono" }, short(a.dispatched_at)),
    timeCell(a.acknowledged_at, a.ack_due, running(a, "ack")),
    timeCell(a.on_scene_at, a.arrive_due, running(a, "arrive")),
    timeCell(a.reported_at, a.resolve_due, running(a, "resolve")),
    h("td", {}, a.result || a.decline_reason || ""));
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
    evidenceSection(c.attachments || [], { label: (a) => {
      const asg = (c.assignments || []).find((x) => x.id === a.assignment_id);
      return [t(`ev.step.${a.step}`), asg ? targetName(asg.target, tid) : ""].filter(Boolean).join(" · ");
    } }),
    h("h3", {}, tt("sv.assignments")),
    h("div", { class: "scroll" }, h("table", { class: "asg" },
      h("thead", {}, h("tr", {}, ...["sv.a.target", "sv.a.state", "sv.a.dispatched", "sv.a.ack", "sv.a.arrive", "sv.a.report",
        "sv.a.result"].map((k) => h("th", {}, tt(k))))),
      h("tbody", {}, (c.assignments || []).map(assignment)))),
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
