// The escalation banner: one alarm per overdue deadline until acknowledged, with the sound (./alarm.js) and its mute switch.
import { t } from "/shared/i18n.js";
import { categoryName, fmtNumber, fmtWhen, targetName } from "/shared/format.js";
import { $, S, alarm, esc, now } from "./state.js";
import { openDetail } from "./drawer.js";

const ALARM_KEY = "xianghu.operator.alarms";
let alarms = JSON.parse(localStorage.getItem(ALARM_KEY) || "[]");

function saveAlarms() { localStorage.setItem(ALARM_KEY, JSON.stringify(alarms.slice(-50))); }

export function raiseAlarm(ev) {
  if (alarms.some((x) => x.seq === ev.seq && x.township_id === ev.township_id)) return;
  const call = S.calls.get(ev.call_id) || (S.detail?.id === ev.call_id ? S.detail : null);
  const a = call?.assignments?.find((x) => x.id === ev.assignment_id);
  alarms.push({ seq: ev.seq, township_id: ev.township_id, call_id: ev.call_id, assignment_id: ev.assignment_id, at: ev.at,
                number: call?.number || "", category: call?.category || "", target: a?.target || "",
                kind: ev.body?.deadline_kind, level: ev.body?.level });
  saveAlarms();
  renderAlarms();
  alarm.ring();
}

/** An offline action whose acted time met these rungs (voids_escalations): their alarms are not the department's. */
export function voidAlarms(ev) {
  const voids = ev.body?.voids_escalations || {};
  const before = alarms.length;
  alarms = alarms.filter((x) => !(x.assignment_id === ev.assignment_id && (voids[x.kind] || []).includes(x.level)));
  if (alarms.length !== before) { saveAlarms(); renderAlarms(); }
}

export function renderAlarms() {
  const box = $("#alarms");
  box.hidden = alarms.length === 0;
  box.innerHTML = alarms.map((x, i) => `<div class="alarm" role="alert" data-i="${i}"><b>⚠ ${esc(t("alarmTitle"))}</b>`
    + `<span>${esc(t("alarmText", { number: fmtNumber(x.number, S.ref), category: categoryName(S.idx, x.category), target: targetName(S.idx, x.target),
                                    kind: t("dl." + x.kind), level: x.level }))}</span>`
    + `<time>${esc(fmtWhen(x.at, now()))}</time>`
    + `<button type="button" class="ghost" data-open="${esc(x.call_id)}">${esc(t("seeCall"))}</button>`
    + `<button type="button" class="ack" data-ack="${i}">${esc(t("ackAlarm"))}</button></div>`).join("")
    + (alarms.length > 1 ? `<div class="alarm-all"><button type="button" class="ack" data-ack="all">${esc(t("ackAll"))}</button></div>` : "");
  if (alarms.length === 0) alarm.stop();
}

$("#alarms").addEventListener("click", (e) => {
  const open = e.target.closest("[data-open]");
  if (open) openDetail(open.dataset.open);
  const ack = e.target.closest("[data-ack]");
  if (!ack) return;
  if (ack.dataset.ack === "all") alarms = [];
  else alarms.splice(Number(ack.dataset.ack), 1);
  saveAlarms();
  renderAlarms();
});

export function renderMute() {
  const b = $("#mute");
  b.textContent = alarm.muted ? t("muteOn") : t("muteOff");
  b.setAttribute("aria-pressed", String(alarm.muted));
}
$("#mute").addEventListener("click", () => { alarm.setMuted(!alarm.muted); renderMute(); });
