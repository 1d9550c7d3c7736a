// Liaison mobile page (联络员): the department's assignments in its township, one-tap actions that queue
// on the phone while offline (console/shared/conn.js keeps the outbox), alerts on a new call.
//
// Authentication: the console's session cookie (HttpOnly, SameSite=Strict) set by /login. The page never
// holds a token in script-readable storage, the WebSocket handshake and every REST call carry the cookie
// on the same origin, and POST /api/v1/logout revokes it server-side.
//
// This module starts the page and wires its parts: ./state.js (state, connection), ./sync.js (list and events),
// ./list.js and ./card.js (the call list), ./detail.js, ./outbox.js (queued commands), ./sheets.js, ./alerts.js,
// ./push.js (lock-screen alerts through Web Push; console/liaison/sw.js shows them).
import { applyI18n, lang, setLang } from "/shared/i18n.js";
import { Connection } from "/shared/conn.js";
import { $, CONN_KEY, S, STORE, api, conn, load, save, setConn, targetName, townshipName } from "./state.js";
import { L, tt } from "./strings.js";
import { applyEvent, loadList, scheduleListReload } from "./sync.js";
import { Alerts, enableAlerts, flushAlerts, updateAlertBanner } from "./alerts.js";
import { Push, dropPush, enablePush, setupPush } from "./push.js";
import { ackFromNotification } from "./outbox.js";
import { setupSheets } from "./sheets.js";
import { tickDue } from "./card.js";
import { render, renderStatus } from "./list.js";
import { go, loadDetail, route } from "./detail.js";

// -- start ---------------------------------------------------------------------------------------------

async function loadMe() {
  try {
    const res = await fetch("/api/v1/me", { credentials: "same-origin" });
    if (res.status === 401) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname);
      return null;
    }
    const me = await res.json();
    save("me", me);
    return me;
  } catch {
    return load("me", null); // offline start from the installed app: the last known user
  }
}

async function loadRef() {
  try {
    S.ref = await api("/api/v1/reference");
    save("ref", S.ref);
  } catch { /* keep the cached one */ }
}

function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register("/liaison/sw.js", { scope: "/liaison/" }).then(async () => {
    const reg = await navigator.serviceWorker.ready;
    const urls = performance.getEntriesByType("resource").map((e) => e.name)
      .filter((u) => u.startsWith(location.origin) && !u.includes("/api/") && !u.includes("/ws"));
    (reg.active || navigator.serviceWorker.controller)?.postMessage({ type: "cache", urls: [...urls, location.pathname] });
  }).catch((e) => console.warn("service worker", e));
  navigator.serviceWorker.addEventListener("message", (e) => {
    const d = e.data || {};
    if (d.type === "open" && d.url) {
      const u = new URL(d.url, location.href);
      location.hash = u.hash;
      if (d.ack) ackFromNotification(d.ack); // 响应 on a notification that the worker could not send
    } else if (d.type === "acked" || d.type === "push") {
      if (d.type === "acked") Alerts.stop(d.assignment_id);
      scheduleListReload();
    }
  });
  navigator.serviceWorker.ready.then(tellClock).catch(() => undefined);
}

/** The service worker stamps a 响应 tapped on a notification on the hub's clock: it learns the offset here. */
async function tellClock() {
  if (!("serviceWorker" in navigator) || !conn) return;
  const reg = await navigator.serviceWorker.getRegistration("/liaison/").catch(() => null);
  if (reg && reg.active) reg.active.postMessage({ type: "clock", skew: conn.hubNow() - Date.now() });
}

/** Opened by the service worker to send a 响应 it could not (``?ack=&cmd=&at=``): queue it once, then forget
 * the query (a reload must not queue it again; the same command id would have no second effect anyway). */
function takeOverAck() {
  const q = new URLSearchParams(location.search);
  if (!q.get("ack") || !q.get("cmd")) return;
  ackFromNotification({ assignment_id: q.get("ack"), command_id: q.get("cmd"), clicked_at: Number(q.get("at")) });
  history.replaceState(null, "", location.pathname + location.hash);
}

async function logout() {
  const waiting = conn ? conn.pending().filter((p) => p.state === "pending").length : 0;
  if (waiting && !confirm(tt("li.logoutPending", { n: waiting }))) return;
  await dropPush();
  try { await fetch("/api/v1/logout", { method: "POST", credentials: "same-origin" }); } catch { /* offline */ }
  if (conn) conn.stop();
  for (const k of Object.keys(localStorage)) if (k.startsWith(STORE)) localStorage.removeItem(k);
  location.href = "/login";
}

async function main() {
  applyI18n(document, L);
  for (const el of document.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", tt(el.dataset.i18nAria));
  renderStatus();
  S.me = await loadMe();
  if (!S.me) {
    $("who").textContent = tt("li.loadFailed");
    return;
  }
  if (S.me.role !== "liaison") {
    const landing = { operator: "/operator/", supervisor: "/supervisor/", admin: "/supervisor/", grid_worker: "/grid/" }[S.me.role];
    if (landing) { location.href = landing; return; }
    $("who").textContent = tt("li.notLiaison");
    return;
  }
  const cached = load("state", null);
  if (cached && cached.user_id === S.me.id) for (const a of cached.asg || []) S.asg.set(a.id, a);
  await loadRef();
  $("who").textContent = [S.me.name, targetName(S.me.target), townshipName(S.me.township_id)].filter(Boolean).join(" · ");

  setConn(new Connection({ storageKey: CONN_KEY }));
  conn.addEventListener("status", () => {
    if (conn.status !== "live") S.caughtUp = false;
    renderStatus();
    render();
  });
  conn.addEventListener("welcome", (e) => {
    const w = e.detail;
    if (w && typeof w.server_time === "number") S.skew = w.server_time - Date.now();
    S.caughtUp = false;
    tellClock();
  });
  conn.addEventListener("event", (e) => applyEvent(e.detail));
  conn.addEventListener("caught_up", () => {
    S.caughtUp = true;
    flushAlerts();
    scheduleListReload();
  });
  conn.addEventListener("resync", () => scheduleListReload());
  conn.addEventListener("pending", () => {
    for (const p of conn.pending()) {
      if (p.state === "refused" && !S.refusalsShown.has(p.command_id)) S.refusalsShown.add(p.command_id);
    }
    render();
  });
  window.addEventListener("online", renderStatus);
  window.addEventListener("offline", renderStatus);

  $("menu-btn").addEventListener("click", () => { $("menu").hidden = !$("menu").hidden; });
  $("lang").addEventListener("click", () => setLang(lang() === "en" ? "zh-CN" : "en"));
  $("logout").addEventListener("click", logout);
  $("alerts-test").addEventListener("click", () => {
    $("menu").hidden = true;
    Alerts.unlock();
    Alerts.beep();
    Alerts.vibrate();
  });
  $("enable-alerts").addEventListener("click", async () => {
    await enableAlerts();
    if (Push.state === "available") await enablePush(); // the same tap allowed notifications
  });
  $("enable-push").addEventListener("click", enablePush);
  $("ringing-stop").addEventListener("click", () => Alerts.stop());
  $("back").addEventListener("click", () => go(null));
  $("detail-refresh").addEventListener("click", () => S.view && loadDetail(S.view));
  document.addEventListener("pointerdown", () => { Alerts.unlock(); setTimeout(updateAlertBanner, 100); }, { passive: true });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && conn.status === "live") scheduleListReload();
  });
  window.addEventListener("hashchange", route);
  setupSheets();
  updateAlertBanner();
  setInterval(() => tickDue(), 1000);

  render();
  route();
  takeOverAck();
  await loadList();
  conn.start();
  registerServiceWorker();
  setupPush();
  document.body.dataset.ready = "1";
}

main();
