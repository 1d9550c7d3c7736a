// The drawer: one call's details, assignments with their deadlines, timeline and the actions on it.
import { t } from "/shared/i18n.js";
import { categoryName, escalationText, fmtDateTime, fmtDuration, fmtNumber, fmtWhen, runningDeadline, targetName } from "/shared/format.js";
import { $, CALL_ACTIONS, CLOSED_ASG, FINAL_CALL, S, api, esc, now } from "./state.js";
import { applyEvent } from "./model.js";
import { tick } from "./board.js";
import { openAction } from "./actions.js";
import { evidenceSection, fromEvent } from "/shared/evidence.js";
import { milestoneTable } from "/shared/milestones.js";

/** Open a call in the drawer; `readOnly` (the history) leaves its actions out. */
export async function openDetail(id, { readOnly = false } = {}) {
  const dlg = $("#detail");
  S.detailReadOnly = readOnly;
  S.detail = S.calls.get(id) ? { ...structuredClone(S.calls.get(id)), timeline: null } : { id, assignments: [], timeline: null };
  S.detailSeqs = new Set();
  S.detailQueue = [];
  renderDetail();
  if (!dlg.open) dlg.showModal();
  try {
    const doc = await api("GET", `/api/v1/calls/${id}`);
    if (S.detail?.id === id) setDetail(doc, S.detailQueue || []);
  } catch (err) {
    $("#detail-body").innerHTML = `<p class="error">${esc(t("loadFail", { msg: err.message }))}</p>`;
  }
}

export function setDetail(doc, queued) {
  S.detail = structuredClone(doc);
  S.detailSeqs = new Set(doc.timeline.map((e) => e.seq));
  S.detailQueue = [];
  for (const ev of queued) detailEvent(ev);
  renderDetail();
}

export function detailEvent(ev) {
  const d = S.detail;
  if (!d.timeline) { (S.detailQueue ||= []).push(ev); return; } // loading: applied once the timeline is here
  if (S.detailSeqs.has(ev.seq)) return;
  applyEvent(d, ev);
  S.detailSeqs.add(ev.seq);
  d.attachments = [...(d.attachments || []), ...fromEvent(ev.event_type, ev.body, ev.seq, ev.assignment_id)];
  d.timeline.push({ seq: ev.seq, type: ev.event_type, assignment_id: ev.assignment_id, actor: ev.actor,
                    at: new Date(ev.at).toISOString(), body: ev.body || {}, call_state: ev.call_state,
                    assignment_state: ev.assignment_state });
  d.timeline.sort((x, y) => x.seq - y.seq);
}

$("#detail").addEventListener("close", () => { S.detail = null; });

function actorText(actor) {
  if (!actor) return "";
  return actor.role === "system" ? t("system") : actor.name || "";
}

function eventDetail(e, call) {
  const b = e.body || {};
  const a = call.assignments.find((x) => x.id === e.assignment_id);
  const who = a ? targetName(S.idx, a.target) : b.target ? targetName(S.idx, b.target) : "";
  const bits = [];
  if (who) bits.push(`<b>${esc(who)}</b>`);
  if (e.type === "assignment.escalated") {
    // the department's time past its deadline (overdue_ms), not the hub's delay in writing it
    const over = b.overdue_ms ?? b.lateness_ms ?? 0;
    bits.push(esc(`${t("dl." + b.deadline_kind)} · ${t("escOverdue", { esc: escalationText(b.level), d: fmtDuration(over) })} · ${t("due")} ${fmtWhen(b.deadline, now())}`));
    if (isVoided(call, e)) bits.push(`<span class="voided">${esc(t("escVoided"))}</span>`);
  }
  if (b.acted_at) {
    bits.push(`<span class="acted">${esc(t("actedAt", { t: fmtDateTime(b.acted_at, { seconds: true }) }))} · `
      + `${esc(t("receivedAt", { t: fmtDateTime(b.received_at || e.at, { seconds: true }) }))}</span>`);
    if (b.acted_at_adjusted) bits.push(`<span class="adjusted">${esc(t("actedAdjusted"))}</span>`);
  }
  if (e.type === "notice.sent" || e.type === "notice.failed") return bits.concat(noticeText(e.type, b)).join(" ");
  if (e.type === "assignment.alarm_handled") bits.push(esc(`${t("dl." + b.deadline_kind)} · ${escalationText(b.level)}`));
  if (e.type === "assignment.dispatched") { // deadlines, named as such (响应时限 …), never to be read as times done
    bits.push(esc(["ack", "arrive", "resolve"].map((k) => `${t("dueOf." + k)} ${fmtWhen(b[k + "_due"], now())}`).join(" · ")));
  }
  for (const k of ["reason", "result", "text", "comment"]) if (b[k]) bits.push(`<q>${esc(b[k])}</q>`);
  if (b.suggested_target) bits.push(esc(`${t("suggested")}: ${targetName(S.idx, b.suggested_target)}`));
  if (e.type === "assignment.transferred" && b.to_target) bits.push(esc(`→ ${targetName(S.idx, b.to_target)}`));
  if (b.not_our_remit) bits.push(`<span class="tag">${esc(t("notOurRemit"))}</span>`);
  if (e.type === "assignment.transfer_rejected") bits.push(esc(t("paused", { m: Math.round((b.paused_ms || 0) / 60000) })));
  if (e.type === "call.lead_changed") bits.push(esc(`${t("lead")}: ${targetName(S.idx, b.target)}`));
  if (e.type === "call.visited" && b.ratings) {
    bits.push(b.ratings.map((r) => `<span class="rating${r.satisfied ? "" : " bad"}">${esc(`${targetName(S.idx, r.target)}: `
      + `${r.resolved ? t("yes") : t("no")} · ${t("satisfaction", { n: r.satisfaction })}`)}${r.comment ? ` <q>${esc(r.comment)}</q>` : ""}</span>`).join(" "));
  } else if (b.satisfaction) {
    bits.push(esc(`${b.resolved ? t("yes") : t("no")} · ${t("satisfaction", { n: b.satisfaction })}`));
  }
  return bits.join(" ");
}

/** A delivery record in plain words: "已通过 短信 通知 张三（联络员）", "短信 发送失败：…，将重试". */
function noticeText(type, b) {
  const channel = t("ch." + b.channel);
  const who = b.audience === "robot" ? b.recipient : `${b.recipient}（${t("aud." + b.audience)}）`;
  const why = [t("why." + b.reason), b.level ? escalationText(b.level) : "", b.repeat ? t("repeatN", { n: b.repeat }) : ""]
    .filter(Boolean).join(" · ");
  const line = type === "notice.sent"
    ? `<span class="notice ok">${esc(t("noticeSent", { channel, who }))}</span>`
    : `<span class="notice bad">${esc(t(b.final ? "noticeGaveUp" : "noticeRetry",
        { channel, who, error: b.error || (b.status ? `HTTP ${b.status}` : "—") }))}</span>`;
  return [line, `<small class="why">${esc(why)}</small>`];
}

/** Was this escalation voided by a later action whose acted time met its rung (voids_escalations)? */
function isVoided(call, e) {
  const b = e.body || {};
  return (call.timeline || []).some((x) => x.assignment_id === e.assignment_id && x.seq > e.seq
    && (x.body?.voids_escalations?.[b.deadline_kind] || []).includes(b.level));
}

function asgHTML(a, call) {
  const open = !CLOSED_ASG.has(a.state);
  // 响应 / 报到 / 办结: actual time, deadline and 按时 / 超时 side by side (shared/milestones.js)
  const steps = milestoneTable(a, { now: now(), callOpen: open && !FINAL_CALL.has(call.state) }).outerHTML;
  const acts = [];
  const live = !FINAL_CALL.has(call.state);
  if (a.state === "declined" && live) acts.push(["approve", a.id], ["reject_transfer", a.id]);
  if (a.state === "dispatched" && live) acts.push(["reroute", a.id]);
  if (["dispatched", "acknowledged", "on_scene"].includes(a.state) && live) acts.push(["nudge", a.id]);
  if (["dispatched", "acknowledged", "on_scene", "declined"].includes(a.state) && live) acts.push(["withdraw", a.id]);
  const joint = call.assignments.filter((x) => !["transferred", "withdrawn"].includes(x.state)).length > 1;
  if (joint && !a.lead && !["transferred", "withdrawn"].includes(a.state) && live && call.state !== "intake") acts.push(["set_lead", a.id]);
  const role = a.lead === true || a.lead === false
    ? `<span class="role ${a.lead ? "lead" : "support"}" data-role="${a.lead ? "lead" : "support"}">${esc(t(a.lead ? "lead" : "support"))}</span>` : "";
  const review = a.state === "declined" && a.review_due
    ? `<div class="dls"><span class="dl active review">${esc(t("dl.review"))} ${esc(fmtWhen(a.review_due, now()))} <time data-due="${esc(a.review_due)}" data-start="${esc(a.declined_at || a.updated_at)}"></time>`
      + `${a.levels?.review ? ` <span class="lvl">↑${a.levels.review}</span>` : ""}</span></div>` : "";
  const visit = a.visit
    ? `<div class="note visit${a.visit.resolved && a.visit.satisfaction >= 4 ? "" : " bad"}">${esc(t("act.return_visit"))}: ${esc(a.visit.resolved ? t("yes") : t("no"))} · ${esc(t("satisfaction", { n: a.visit.satisfaction }))}${a.visit.comment ? ` <q>${esc(a.visit.comment)}</q>` : ""}</div>` : "";
  const running = open ? runningDeadline(a) : null;
  const lvl = Math.max(0, ...Object.entries(a.levels || {}).filter(([k]) => k !== "review").map(([, v]) => Number(v)));
  return `<li class="asg st-${esc(a.state)}" data-asg="${esc(a.id)}"><div class="asg-h"><b>${esc(targetName(S.idx, a.target))}</b>${role}`
    + `<span class="pill st-${esc(a.state)}">${esc(t("asg." + a.state))}</span>`
    + (running ? `<b class="mark mark-overdue" data-overdue-since="${esc(running.due.toISOString())}" hidden></b>` : "")
    + (lvl ? `<b class="mark mark-esc" data-level="${lvl}">${esc(escalationText(lvl))}</b>` : "")
    + (a.reopened ? `<span class="tag reopened">${esc(t("reopened", { n: a.reopened }))}</span>` : "") + `</div>`
    + steps + review + visit
    + (a.decline_reason && a.state === "declined" ? `<div class="note">${esc(t("declineReason"))}: ${esc(a.decline_reason)}${a.suggested_target ? ` · ${esc(t("suggested"))}: ${esc(targetName(S.idx, a.suggested_target))}` : ""}</div>` : "")
    + (a.result ? `<div class="note">${esc(t("result"))}: ${esc(a.result)}</div>` : "")
    + (acts.length && !S.detailReadOnly ? `<div class="acts">${acts.map(([k, id]) => `<button type="button" class="small${k === "reject_transfer" ? " danger" : ""}" data-act="${k}" data-asg="${esc(id)}">${esc(t("act." + k))}</button>`).join("")}</div>` : "")
    + `</li>`;
}

/** 重复来电: earlier calls of the township from this phone, a button that looks them up in the history. */
function repeatBadge(d) {
  if (!d.repeat_calls || !d.reporter_phone) return "";
  return ` <button type="button" class="repeat" data-phone-lookup="${esc(d.reporter_phone)}" title="${esc(t("repeatTitle"))}">`
    + `${esc(t("repeatCalls", { n: d.repeat_calls }))}</button>`;
}

/** "报到 · 公安": the step a photo came with, and whose step it was. */
function evidenceLabel(a, call) {
  const asg = call.assignments.find((x) => x.id === a.assignment_id);
  return [t(`ev.step.${a.step}`), asg ? targetName(S.idx, asg.target) : ""].filter(Boolean).join(" · ");
}

export function renderDetail() {
  const d = S.detail;
  if (!d) return;
  $("#detail-h").innerHTML = d.number ? `<span class="badge p-${esc(d.priority)}">${esc(t("prio." + d.priority))}</span> ${esc(fmtNumber(d.number, S.ref))} `
    + `<span class="pill cs">${esc(t("call." + d.state))}</span>` : "…";
  if (!d.category) { $("#detail-body").innerHTML = ""; return; }
  const callActs = S.detailReadOnly ? [] : Object.entries(CALL_ACTIONS).filter(([, states]) => states.includes(d.state)).map(([k]) => k);
  const tl = d.timeline
    ? d.timeline.map((e) => `<li class="ev ev-${esc(e.type.replace(".", "-"))}" data-seq="${e.seq}"><time>${esc(fmtDateTime(e.at, { seconds: true }))}</time>`
        + `<span class="what">${esc(t("ev." + e.type))}</span><span class="who">${esc(actorText(e.actor))}</span>`
        + `<span class="det">${eventDetail(e, d)}</span></li>`).join("")
    : `<li class="muted">…</li>`;
  $("#detail-body").innerHTML = `<section class="info"><h3>${esc(categoryName(S.idx, d.category))} · ${esc(d.title)}</h3><dl>`
    + `<dt>${esc(t("place"))}</dt><dd>${esc(d.address || "—")}</dd>`
    + `<dt>${esc(t("source"))}</dt><dd>${esc(t("src." + d.source))}</dd>`
    + `<dt>${esc(t("reporter"))}</dt><dd>${esc([d.reporter_name, d.reporter_phone].filter(Boolean).join(" · ") || "—")}${repeatBadge(d)}</dd>`
    + `<dt>${esc(t("createdAt"))}</dt><dd>${esc(fmtDateTime(d.created_at))}</dd>`
    + (d.description ? `<dt>${esc(t("description"))}</dt><dd>${esc(d.description)}</dd>` : "")
    + (d.close_reason ? `<dt>${esc(t("fCloseReason"))}</dt><dd>${esc(d.close_reason)}</dd>` : "")
    + `</dl></section>`
    + (callActs.length ? `<section class="call-acts">${callActs.map((k) => `<button type="button" class="${["accept", "close"].includes(k) ? "primary" : k === "cancel" ? "danger" : ""}" data-act="${k}">${esc(t("act." + k))}</button>`).join("")}</section>` : "")
    + `<div id="detail-evidence"></div>`
    + `<section><h3>${esc(t("asgs"))}</h3><ul class="asgs">${d.assignments.map((a) => asgHTML(a, d)).join("")}</ul></section>`
    + `<section><h3>${esc(t("timeline"))}</h3><ol class="timeline" id="timeline">${tl}</ol></section>`;
  const evidence = evidenceSection(d.attachments || [], { label: (a) => evidenceLabel(a, d) });
  if (evidence) $("#detail-evidence").replaceChildren(evidence);
  tick();
}

$("#detail-body").addEventListener("click", (e) => {
  const b = e.target.closest("[data-act]");
  if (b) openAction(b.dataset.act, b.dataset.asg || null);
});
