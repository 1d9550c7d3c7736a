// Lock-screen alerts (Web Push): this browser subscribed for the logged-in account, so new calls and
// escalations reach the phone with the page closed (console/liaison/sw.js shows them). The state is shown
// in the menu, and as a banner while there is something to do: on, available (tap to turn on), working,
// blocked (notifications refused), unsupported, failed (with why), or off (the hub sends no Web Push).
import { $, api } from "./state.js";
import { tt } from "./strings.js";

const SUBSCRIBE_WAIT_MS = 20000; // a push service the phone cannot reach may never answer

export const Push = { state: "off", reason: "", key: null };

function supported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function keyBytes(b64url) {
  const text = atob(b64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (b64url.length % 4)) % 4));
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function sameKey(sub, key) {
  const had = sub.options && sub.options.applicationServerKey;
  if (!had) return false;
  const a = new Uint8Array(had);
  const b = keyBytes(key);
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function withTimeout(promise, ms, why) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(why)), ms); })])
    .finally(() => clearTimeout(timer));
}

async function registration() {
  return withTimeout(navigator.serviceWorker.ready, SUBSCRIBE_WAIT_MS, tt("li.push.noWorker"));
}

async function store(sub) {
  await api("/api/v1/push/subscriptions", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(sub.toJSON()),
  });
}

function set(state, reason = "") {
  Push.state = state;
  Push.reason = reason;
  renderPush();
}

function why(err) {
  if (!err) return "";
  if (err.data && err.data.message) return err.data.message;
  return [err.name && err.name !== "Error" ? err.name : "", err.message || ""].filter(Boolean).join(": ");
}

async function subscribe() {
  set("working");
  try {
    const reg = await registration();
    let sub = await reg.pushManager.getSubscription();
    if (sub && !sameKey(sub, Push.key)) { // the hub's key changed: a subscription for the old one is useless
      await sub.unsubscribe().catch(() => undefined);
      sub = null;
    }
    if (!sub) {
      sub = await withTimeout(reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(Push.key) }),
        SUBSCRIBE_WAIT_MS, tt("li.push.timeout"));
    }
    await store(sub);
    set("on");
  } catch (err) {
    if ("Notification" in window && Notification.permission === "denied") set("blocked");
    else set("failed", why(err));
  }
}

/** At start: ask the hub whether it pushes to this account, and keep this browser's subscription stored. */
export async function setupPush() {
  let info;
  try {
    info = await api("/api/v1/push/key");
  } catch {
    return; // offline: nothing can be subscribed now; the next start tries again
  }
  if (!info.enabled) { set("off"); return; }
  Push.key = info.public_key;
  if (!supported()) { set("unsupported"); return; }
  if (Notification.permission === "denied") { set("blocked"); return; }
  // Permission given before (now or for the call alerts): no prompt needed, subscribe or refresh quietly.
  if (Notification.permission === "granted") { await subscribe(); return; }
  set("available");
}

/** The tap on 开启锁屏提醒: the permission prompt belongs to this gesture. */
export async function enablePush() {
  if (!Push.key) return;
  if (!supported()) { set("unsupported"); return; }
  let permission = Notification.permission;
  if (permission === "default") {
    try { permission = await Notification.requestPermission(); } catch { permission = Notification.permission; }
  }
  if (permission !== "granted") { set(permission === "denied" ? "blocked" : "available"); return; }
  await subscribe();
}

/** On logout: this browser stops receiving the account's pushes (a shared phone must not keep them). */
export async function dropPush() {
  try {
    const reg = "serviceWorker" in navigator ? await navigator.serviceWorker.getRegistration("/liaison/") : null;
    const sub = reg && reg.pushManager ? await reg.pushManager.getSubscription() : null;
    if (!sub) return;
    await api("/api/v1/push/subscriptions", {
      method: "DELETE", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ endpoint: sub.endpoint }),
    }).catch(() => undefined);
    await sub.unsubscribe();
  } catch { /* offline or unsupported: the hub retires it when the push service says it is gone */ }
}

export function renderPush() {
  const s = Push.state;
  const line = $("push-state");
  line.dataset.state = s;
  line.hidden = s === "off";
  line.textContent = tt(`li.push.${s}`, { reason: Push.reason });
  const banner = $("enable-push");
  banner.dataset.state = s;
  banner.hidden = !["available", "failed", "blocked"].includes(s);
  banner.textContent = s === "available" ? tt("li.push.enable") : tt(`li.push.${s}`, { reason: Push.reason });
}
