// The escalation alarms, shared by the township's operators: one banner per escalated deadline, sounding
// (./alarm.js, with its mute switch) until someone takes it. "我来处理" sends handle_alarm; every console
// (the one that pressed it too) silences the alarm when assignment.alarm_handled arrives and says who took it.
// An alarm whose clock stopped (acknowledged, on scene, reported, withdrawn, transferred, the call closed or
// cancelled) or whose rung no longer counts (an acted time voided it, a reopen reset it) clears itself.
import { t } from "/shared/i18n.js";
import { readJSON, writeJSON } from "/shared/storage.js";
import { RUNNING_CLOCKS, categoryName, fmtNumber, fmtWhen, targetName } from "/shared/format.js";
import { $, S, alarm, esc, now, toast } from "./state.js";
import { openDetail } from "./drawer.js";
import { run } from "./model.js";

const ALARM_KEY = "xianghu.operator.alarms";
const HANDLED_SHOWN_MS = 60000; // how long "taken by …" stays before it goes by itself
let alarms = readJSON(ALARM_KEY, []);
if (!Array.isArray(alarms)) alarms = [];

function saveAlarms() { writeJSON(ALARM_KEY, alarms.slice(-50)); }

const active = () => alarms.filter((x) => !x.handled);

export function raiseAlarm(ev) {
  if (alarms.some((x) => x.seq === ev.seq && x.township_id === ev.township_id)) return;
  const call = S.calls.get(ev.call_id) || (S.detail?.id === ev.call_id ? S.detail : null);
  const a = call?.assignments?.find((x) => x.id === ev.assignment_id);
  alarms.push({ seq: ev.seq, township_id: ev.township_id, call_id: ev.call_id, assignment_id: ev.assignment_id, at: ev.at,
                number: call?.number || "", category: call?.category || "", target: a?.target || "",
                kind: ev.body?.deadline_kind, level: ev.body?.level, handled: null });
  saveAlarms();
  renderAlarms();
  alarm.ring();
}

/** assignment.alarm_handled: someone took the alarms of this deadline up to this level. */
export function alarmHandled(ev) {
  const b = ev.body || {};
  let changed = false;
  for (const x of alarms) {
    if (!x.handled && x.assignment_id === ev.assignment_id && x.kind === b.deadline_kind && x.level <= b.level) {
      x.handled = { name: ev.actor?.name || "", at: ev.at, seen: Date.now() };
      changed = true;
    }
  }
  if (changed) { saveAlarms(); renderAlarms(); }
}

/** Whether the clock an alarm is about still runs: the department's clocks by state, the review clock while a
 *  transfer request waits (the same rule as the hub's WAITING_FOR). */
function clockRuns(a, kind) {
  return kind === "review" ? a.state === "declined" : (RUNNING_CLOCKS[a.state] || []).includes(kind);
}

/** Drop the alarms that have moved on; called after every event and after the open calls are (re)loaded. */
export function reconcileAlarms() {
  if (!S.loaded || S.loading) return;
  const before = alarms.length;
  alarms = alarms.filter((x) => {
    if (x.handled) return Date.now() - (x.handled.seen || 0) < HANDLED_SHOWN_MS;
    const call = S.calls.get(x.call_id);
    if (!call) return S.fetching.has(x.call_id); // not open any more (closed, cancelled), unless being fetched
    const a = call.assignments.find((y) => y.id === x.assignment_id);
    if (!a) return S.fetching.has(x.call_id);
    return clockRuns(a, x.kind) && (a.levels?.[x.kind] || 0) >= x.level;
  });
  if (alarms.length !== before) { saveAlarms(); renderAlarms(); }
}

function alarmText(x) {
  return t("alarmText", { number: fmtNumber(x.number, S.ref), category: categoryName(S.idx, x.category),
                          target: targetName(S.idx, x.target), kind: t("dl." + x.kind), level: x.level });
}

export function renderAlarms() {
  const box = $("#alarms");
  box.hidden = alarms.length === 0;
  const open = active();
  box.innerHTML = alarms.map((x, i) => x.handled
    ? `<div class="alarm handled" role="status" data-i="${i}" data-asg="${esc(x.assignment_id)}" data-kind="${esc(x.kind)}" data-level="${esc(x.level)}">`
      + `<b>✓ ${esc(t("alarmHandled"))}</b><span>${esc(alarmText(x))} · ${esc(t("takenBy", { name: x.handled.name }))}</span>`
      + `<time>${esc(fmtWhen(x.handled.at, now()))}</time>`
      + `<button type="button" class="ghost ack" data-ack="${i}" aria-label="${esc(t("dismiss"))}">×</button></div>`
    : `<div class="alarm" role="alert" data-i="${i}" data-asg="${esc(x.assignment_id)}" data-kind="${esc(x.kind)}" data-level="${esc(x.level)}"><b>⚠ ${esc(t("alarmTitle"))}</b>`
      + `<span>${esc(alarmText(x))}</span>`
      + `<time>${esc(fmtWhen(x.at, now()))}</time>`
      + `<button type="button" class="ghost" data-open="${esc(x.call_id)}">${esc(t("seeCall"))}</button>`
      + `<button type="button" class="take" data-take="${i}">${esc(t("takeAlarm"))}</button>`
      + `<button type="button" class="ghost ack" data-ack="${i}">${esc(t("ackAlarm"))}</button></div>`).join("")
    + (open.length > 1 ? `<div class="alarm-all"><button type="button" class="ack" data-ack="all">${esc(t("ackAll"))}</button></div>` : "");
  if (open.length === 0) alarm.stop();
}

async function take(x, btn) {
  btn.disabled = true;
  try {
    await run("handle_alarm", { assignment_id: x.assignment_id, deadline_kind: x.kind, level: x.level });
    // the alarm_handled event (to every console, this one too) marks it taken
  } catch (err) {
    btn.disabled = false;
    toast(`${t("takeAlarm")}: ${err.message || err.code || err}`, "bad");
    if (["illegal_transition", "not_found", "validation"].includes(err.code)) { // it has moved on meanwhile
      alarms = alarms.filter((y) => y !== x);
      saveAlarms();
      renderAlarms();
    }
  }
}

$("#alarms").addEventListener("click", (e) => {
  const open = e.target.closest("[data-open]");
  if (open) openDetail(open.dataset.open);
  const taking = e.target.closest("[data-take]");
  if (taking) { const x = alarms[Number(taking.dataset.take)]; if (x) take(x, taking); return; }
  const ack = e.target.closest("[data-ack]");
  if (!ack) return;
  if (ack.dataset.ack === "all") alarms = alarms.filter((x) => x.handled);
  else alarms.splice(Number(ack.dataset.ack), 1);
  saveAlarms();
  renderAlarms();
});

setInterval(reconcileAlarms, 5000); // "taken by …" goes after a minute

export function renderMute() {
  const b = $("#mute");
  b.textContent = alarm.muted ? t("muteOn") : t("muteOff");
  b.setAttribute("aria-pressed", String(alarm.muted));
}
$("#mute").addEventListener("click", () => { alarm.setMuted(!alarm.muted); renderMute(); });
