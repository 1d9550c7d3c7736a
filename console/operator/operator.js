// The operator's live console: the township's open calls, presence, intake, one call's timeline and actions.
// This module wires the views (board, drawer, intake, escalations) and starts the page; the state lives in
// ./state.js, the calls are kept current by ./model.js.
import "./strings.js";
import { applyI18n, lang, setLang, t } from "/shared/i18n.js";
import { indexReference, refName } from "/shared/format.js";
import { $, S, alarm, api, conn, esc, toast } from "./state.js";
import { loadAll, onEvent, retryLoad } from "./model.js";
import { fillFilters, renderBoardState, scheduleRender, tick } from "./board.js";
import { loadDuty, presenceChanged, renderDuty } from "./duty.js";
import { startNotifyStatus } from "./notify.js";
import { renderAlarms, renderMute } from "./escalations.js";
import { fillCreateForm, openCreate } from "./intake.js";
import "./drawer.js";
import { route as routeView } from "./history.js";
import "./actions.js";

// -- connection indicator, refused commands -----------------------------------------------------------

function renderConn() {
  const el = $("#conn");
  el.dataset.status = conn.status;
  el.querySelector("span").textContent = t("conn." + conn.status);
  const p = conn.pending();
  const waiting = p.filter((c) => c.state === "pending").length;
  const btn = $("#pending");
  btn.hidden = waiting === 0;
  btn.textContent = t("pending.count", { n: waiting });
  const refused = p.filter((c) => c.state === "refused");
  $("#refused").innerHTML = refused.map((c) => `<div class="refusal"><b>${esc(t("refusedTitle"))}</b> `
    + `<span>${esc(t("act." + c.name) !== "act." + c.name ? t("act." + c.name) : c.name)}: ${esc(c.error?.message || c.error?.code || "")}</span>`
    + `<button type="button" class="ghost" data-dismiss="${esc(c.command_id)}">${esc(t("dismiss"))}</button></div>`).join("");
}
$("#refused").addEventListener("click", (e) => {
  const b = e.target.closest("[data-dismiss]");
  if (b) { conn.dismiss(b.dataset.dismiss); renderConn(); }
});

for (const b of document.querySelectorAll("dialog [data-close]")) b.addEventListener("click", () => b.closest("dialog").close());

// -- keyboard, language, logout --------------------------------------------------------------------------

document.addEventListener("keydown", (e) => {
  if (e.target.closest("input, textarea, select, dialog[open]") || e.ctrlKey || e.metaKey || e.altKey) return;
  if ((e.key === "n" || e.key === "N" || e.key === "F2") && S.me?.role === "operator") { e.preventDefault(); openCreate(); }
  if (e.key === "/") { e.preventDefault(); $(location.hash === "#history" ? "#h-q" : "#search").focus(); }
});
document.addEventListener("pointerdown", () => alarm.unlock(), { once: false, capture: true });
document.addEventListener("keydown", () => alarm.unlock(), { capture: true });

$("#lang").addEventListener("click", () => setLang(lang() === "en" ? "zh-CN" : "en"));
$("#logout").addEventListener("click", async () => {
  conn.stop();
  await fetch("/api/v1/logout", { method: "POST" }).catch(() => {});
  location.href = "/login";
});

// -- start -------------------------------------------------------------------------------------------------

/** Another role opened the operator console: no board and no 新建呼叫 (the hub would refuse the commands anyway);
 *  say so politely and link to the console that is theirs. */
const LANDING = { liaison: "/liaison/", grid_worker: "/grid/", supervisor: "/supervisor/", admin: "/supervisor/",
                  leader: "/supervisor/", department_head: "/supervisor/" };
function refuseRole(me) {
  document.body.classList.add("not-op");
  $(".op-main").hidden = true;
  $(".views").hidden = true;
  $("#new-call").hidden = true;
  $("#not-operator").hidden = false;
  $("#who").textContent = me.name;
  $("#not-operator-text").textContent = t("notOpText", { role: t("role." + me.role) });
  const link = $("#not-operator-link");
  link.href = LANDING[me.role] || "/login";
  link.textContent = LANDING[me.role] ? t("notOpLink." + LANDING[me.role].replaceAll("/", "")) : t("notOpLogin");
}

/** Who is looking and the reference data; false (the board in its failed state) when they could not be read. */
async function boot() {
  S.loadError = null;
  renderBoardState();
  try {
    [S.me, S.ref] = await Promise.all([api("GET", "/api/v1/me"), api("GET", "/api/v1/reference")]);
    return true;
  } catch (err) {
    S.loadError = err;
    return false;
  }
}

async function main() {
  applyI18n();
  renderMute();
  renderConn();
  renderAlarms();
  conn.addEventListener("status", () => { renderConn(); renderBoardState(); });
  while (!(await boot())) {
    await new Promise((resolve) => { S.retryLoad = resolve; renderBoardState(); }); // until 重试
  }
  S.retryLoad = retryLoad;
  if (S.me.role !== "operator") { refuseRole(S.me); return; }
  $("#new-call").hidden = false;
  S.idx = indexReference(S.ref);
  for (const tw of S.ref.townships) for (const u of tw.units || []) S.idx.targets.set(`unit:${u.id}`, { ...u, code: `unit:${u.id}` });
  S.township = S.ref.townships.find((x) => x.id === S.me.township_id) || S.ref.townships[0];
  $("#township").textContent = refName(S.township);
  $("#who").textContent = S.me.name;
  fillFilters();
  fillCreateForm();
  renderDuty();
  renderAlarms();
  routeView();

  conn.addEventListener("pending", () => { renderConn(); scheduleRender(); });
  conn.addEventListener("welcome", (e) => { S.skew = e.detail.server_time - Date.now(); tick(); });
  conn.addEventListener("event", (e) => onEvent(e.detail));
  conn.addEventListener("resync", () => loadAll());
  conn.addEventListener("presence", (e) => { S.presence[e.detail.township_id] = e.detail.online || {}; presenceChanged(); });
  await loadAll();
  loadDuty();
  startNotifyStatus();
  conn.start();
  setInterval(tick, 1000);
  setInterval(scheduleRender, 15000); // re-sort as deadlines approach
}

main().catch((err) => toast(t("loadFail", { msg: err.message || err.code || err }), "bad"));
