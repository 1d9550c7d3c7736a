// 历史: the township's calls, closed and cancelled ones included, searched over REST (GET /api/v1/calls) by
// number or text, reporter phone (full, 138****5678 or the last 4 digits), date range and state, a page at a
// time. Read-only: a row opens the drawer without its actions. Reached from the header (#history).
import { t } from "/shared/i18n.js";
import { categoryName, fmtDateTime, fmtNumber, numberQuery } from "/shared/format.js";
import { $, S, api, esc } from "./state.js";
import { openDetail } from "./drawer.js";

export const PAGE = 50;
const STATES = ["closed", "cancelled", "intake", "dispatched", "in_progress", "review", "accepted", "visited"];
const DAY_MS = 24 * 3600 * 1000;

const H = { offset: 0, more: false, loaded: false, seq: 0 };

function fillStates() {
  const sel = $("#h-state");
  const keep = sel.value;
  sel.innerHTML = `<option value="">${esc(t("allStates"))}</option>`
    + `<option value="_open">${esc(t("hOpen"))}</option>`
    + STATES.map((s) => `<option value="${s}">${esc(t("call." + s))}</option>`).join("");
  sel.value = keep;
}

/** The day's start in Asia/Shanghai (date inputs hold a calendar day there). */
function dayStart(value) {
  return new Date(`${value}T00:00:00+08:00`);
}

function params() {
  const p = new URLSearchParams({ limit: String(PAGE + 1), offset: String(H.offset) });
  const q = numberQuery($("#h-q").value, S.ref);
  if (q) p.set("q", q);
  const phone = $("#h-phone").value.trim();
  if (phone) p.set("phone", phone);
  if ($("#h-since").value) p.set("since", dayStart($("#h-since").value).toISOString());
  if ($("#h-until").value) p.set("until", new Date(dayStart($("#h-until").value).getTime() + DAY_MS).toISOString());
  const state = $("#h-state").value;
  if (state === "_open") p.set("open", "true");
  else if (state) p.set("state", state);
  return p;
}

function rowHTML(c) {
  return `<tr data-id="${esc(c.id)}" tabindex="0" class="cs-${esc(c.state)}">`
    + `<td class="num">${esc(fmtNumber(c.number, S.ref))}</td>`
    + `<td class="when">${esc(fmtDateTime(c.created_at))}</td>`
    + `<td>${esc(categoryName(S.idx, c.category))}</td>`
    + `<td class="title">${esc(c.title)}</td>`
    + `<td>${esc(c.address || "—")}</td>`
    + `<td class="phone">${esc(c.reporter_phone || "—")}</td>`
    + `<td><span class="pill cs">${esc(t("call." + c.state))}</span></td></tr>`;
}

export async function search({ offset = 0 } = {}) {
  H.offset = offset;
  const seq = ++H.seq;
  $("#h-error").textContent = "";
  let data;
  try {
    data = await api("GET", `/api/v1/calls?${params()}`);
  } catch (err) {
    if (seq === H.seq) $("#h-error").textContent = err.field ? `${t(err.field === "phone" ? "fPhone" : "hSearch")}: ${err.message}` : err.message;
    return;
  }
  if (seq !== H.seq) return; // a newer search answered first
  H.more = data.calls.length > PAGE;
  const calls = data.calls.slice(0, PAGE);
  H.loaded = true;
  $("#h-rows").innerHTML = calls.map(rowHTML).join("");
  $("#h-empty").hidden = calls.length > 0;
  $("#h-page").textContent = t("hPage", { n: Math.floor(H.offset / PAGE) + 1 });
  $("#h-prev").disabled = H.offset === 0;
  $("#h-next").disabled = !H.more;
}

/** Show the history (or the board) as the location's hash says. */
export function route() {
  const on = location.hash === "#history";
  $("#history").hidden = !on;
  $(".board-wrap").hidden = on;
  $(on ? "#view-history" : "#view-board").setAttribute("aria-current", "page");
  $(on ? "#view-board" : "#view-history").removeAttribute("aria-current");
  if (on && !H.loaded) { fillStates(); search(); }
}

/** Open the history looking up a reporter phone (the repeat-caller badge). */
export function lookUpPhone(phone) {
  $("#h-phone").value = phone;
  $("#h-q").value = "";
  H.loaded = true;
  if (location.hash !== "#history") location.hash = "#history";
  else route();
  fillStates();
  search();
}

$("#history-form").addEventListener("submit", (e) => { e.preventDefault(); search(); });
$("#h-reset").addEventListener("click", () => {
  $("#history-form").reset();
  search();
});
$("#h-prev").addEventListener("click", () => search({ offset: Math.max(0, H.offset - PAGE) }));
$("#h-next").addEventListener("click", () => { if (H.more) search({ offset: H.offset + PAGE }); });
$("#h-rows").addEventListener("click", (e) => {
  const tr = e.target.closest("tr[data-id]");
  if (tr) openDetail(tr.dataset.id, { readOnly: true });
});
$("#h-rows").addEventListener("keydown", (e) => {
  const tr = e.target.closest("tr[data-id]");
  if (tr && e.key === "Enter") openDetail(tr.dataset.id, { readOnly: true });
});
window.addEventListener("hashchange", route);
// The drawer's repeat-caller badge looks the phone up here.
$("#detail-body").addEventListener("click", (e) => {
  const b = e.target.closest("[data-phone-lookup]");
  if (!b) return;
  $("#detail").close();
  lookUpPhone(b.dataset.phoneLookup);
});
