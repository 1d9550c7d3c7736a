// The warning when a notification channel does not deliver (SMS gateway unreachable, a robot refusing):
// GET /api/v1/notify/status, polled and refreshed when a delivery record arrives.
import { t } from "/shared/i18n.js";
import { fmtWhen } from "/shared/format.js";
import { $, S, api, esc, now } from "./state.js";
import { renderDuty } from "./duty.js";

const POLL_MS = 30000;
let soon = null;

export async function loadNotifyStatus() {
  try {
    S.notify = await api("GET", `/api/v1/notify/status?township_id=${encodeURIComponent(S.township.id)}`);
  } catch (err) {
    console.warn("notify status", err);
  }
  renderNotifyStatus();
  renderDuty(); // the dispatch warning names the channels that will reach an offline department
}

/** A delivery record (notice.sent / notice.failed) arrived: the status may have changed. */
export function noticeEvent() {
  clearTimeout(soon);
  soon = setTimeout(loadNotifyStatus, 500);
}

export function startNotifyStatus() {
  loadNotifyStatus();
  setInterval(loadNotifyStatus, POLL_MS);
}

function channelLine(c) {
  const bits = [];
  if (c.retrying) bits.push(t("nRetrying", { n: c.retrying, since: fmtWhen(c.failing_since, now()) }));
  if (c.pending > c.retrying) bits.push(t("nWaiting", { n: c.pending - c.retrying }));
  if (c.failed) bits.push(t("nFailed", { n: c.failed }));
  return `<div class="notify-warn" role="alert" data-channel="${esc(c.channel)}"><b>⚠ ${esc(t("chFailing", { channel: t("ch." + c.channel) }))}</b>`
    + `<span>${esc(bits.join("，"))}</span>`
    + (c.last_error ? `<small class="err">${esc(t("lastError", { error: c.last_error }))}</small>` : "") + `</div>`;
}

export function renderNotifyStatus() {
  const box = $("#notify-status");
  const failing = (S.notify?.channels || []).filter((c) => c.retrying || c.failed);
  box.hidden = failing.length === 0;
  box.innerHTML = failing.map(channelLine).join("");
}
