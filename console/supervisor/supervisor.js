// The supervisor page (督查考核), read-only: the evaluation first (ranking, the assignments behind each figure,
// formulas, charts, spreadsheets), the call log second. For county supervisors and admins, township leaders
// (their township) and department heads (their department in every township); the hub scopes every answer, the
// page only adapts its pickers. No command is ever sent from here. Live updates come through the shared
// connection module; the data itself is read over REST.
import { applyI18n, lang, setLang } from "/shared/i18n.js";
import { Connection } from "/shared/conn.js";
import { $, S, api, myScope, tick, tt } from "/supervisor/common.js";
import { openCall, reloadDetail } from "/supervisor/detail.js";
import { loadCalls, refreshCalls, setupLog, showConnState, updateCalls } from "/supervisor/log.js";
import { loadScorecards, setupEvaluation } from "/supervisor/evaluation.js";
import { setupDrill } from "/supervisor/drill.js";
import { resizeCharts, setupCharts } from "/supervisor/charts.js";

const VIEWS = ["eval", "log"];
const loaded = new Set();

function show(view) {
  for (const v of VIEWS) {
    $(`view-${v}`).hidden = v !== view;
    $(`tab-${v}`).setAttribute("aria-selected", v === view ? "true" : "false");
  }
  const u = new URLSearchParams(location.search);
  if (view === "eval") u.delete("tab");
  else u.set("tab", view);
  const qs = u.toString();
  history.replaceState(null, "", `${location.pathname}${qs ? "?" + qs : ""}${location.hash}`);
  if (!loaded.has(view)) {
    loaded.add(view);
    if (view === "eval") loadScorecards();
    else loadCalls();
  }
  if (view === "eval") resizeCharts();
}

// Events are gathered for a moment, then only the calls they name are re-read (./log.js updateCalls); a resync
// (the hub could not replay) re-reads the rows shown.
let reloadTimer = null;
const touched = new Set();
let resync = false;
function scheduleReload(ev) {
  if (ev && ev.call_id) touched.add(ev.call_id);
  else resync = true;
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => {
    const ids = [...touched];
    touched.clear();
    if (loaded.has("log")) {
      if (resync) refreshCalls();
      else updateCalls(ids);
    }
    if (S.selected && (resync || ids.includes(S.selected))) reloadDetail();
    resync = false;
  }, 800);
}

function connect() {
  const conn = new Connection({ storageKey: "xianghu.supervisor.conn" });
  conn.addEventListener("welcome", (e) => { S.skew = e.detail.server_time - Date.now(); tick(); });
  conn.addEventListener("event", (e) => { const n = Date.now() + S.skew; if (e.detail.at > n) S.skew += e.detail.at - n; });
  const status = () => {
    $("conn").dataset.status = conn.status;
    $("conn-text").textContent = tt(`sv.status.${conn.status}`);
  };
  conn.addEventListener("status", status);
  conn.addEventListener("event", (e) => scheduleReload(e.detail));
  conn.addEventListener("resync", () => scheduleReload(null));
  conn.addEventListener("status", () => showConnState(conn.status));
  status();
  conn.start();
}

async function main() {
  applyI18n(document);
  try {
    S.me = await api("/api/v1/me");
  } catch {
    return;
  }
  if (S.me.role === "operator" || S.me.role === "liaison") {
    location.href = `/${S.me.role}/`;
    return;
  }
  S.ref = await api("/api/v1/reference");
  $("who").textContent = `${S.me.name} · ${tt(`role.${S.me.role}`)} · ${myScope()}`;
  document.body.dataset.role = S.me.role;
  setupLog();
  setupEvaluation();
  setupDrill();
  setupCharts();
  for (const v of VIEWS) $(`tab-${v}`).addEventListener("click", () => show(v));
  $("lang").addEventListener("click", () => setLang(lang() === "en" ? "zh-CN" : "en"));
  $("logout").addEventListener("click", async () => {
    try { await fetch("/api/v1/logout", { method: "POST", credentials: "same-origin" }); } catch { /* offline */ }
    location.href = "/login";
  });
  const tab = new URLSearchParams(location.search).get("tab");
  show(VIEWS.includes(tab) ? tab : "eval");
  const fromHash = location.hash.slice(1);
  if (/^[0-9a-f-]{36}$/.test(fromHash)) openCall(fromHash);
  connect();
  setInterval(tick, 1000);
  document.body.dataset.ready = "1";
}

main();
