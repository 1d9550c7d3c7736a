// Alerts on a new call: a repeated beep (WebAudio), vibration and a system notification, until acknowledged.
import { lang } from "/shared/i18n.js";
import { $, CALL_FINAL, S, persist } from "./state.js";
import { tt } from "./strings.js";
import { effectiveState } from "./outbox.js";

export const Alerts = {
  ctx: null,
  ringTimer: null,
  ringCount: 0,
  ringing: new Set(),
  unlock() {
    try {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return;
      if (!this.ctx) this.ctx = new AC();
      if (this.ctx.state === "suspended") this.ctx.resume().catch(() => {});
    } catch { /* no audio on this device */ }
  },
  get audioReady() {
    return !!this.ctx && this.ctx.state === "running";
  },
  beep() {
    window.__xianghuAlerts && window.__xianghuAlerts.push({ kind: "sound", at: Date.now() });
    if (!this.ctx) return;
    const ctx = this.ctx;
    const t0 = ctx.currentTime + 0.02;
    const gain = ctx.createGain();
    gain.connect(ctx.destination);
    gain.gain.setValueAtTime(0.0001, t0);
    for (let i = 0; i < 6; i++) {
      const start = t0 + i * 0.32;
      const osc = ctx.createOscillator();
      osc.type = "square";
      osc.frequency.setValueAtTime(i % 2 ? 740 : 988, start);
      osc.connect(gain);
      gain.gain.setValueAtTime(0.35, start);
      gain.gain.setValueAtTime(0.0001, start + 0.26);
      osc.start(start);
      osc.stop(start + 0.27);
    }
  },
  vibrate() {
    try {
      if (navigator.vibrate) navigator.vibrate([500, 200, 500, 200, 900]);
    } catch { /* not allowed */ }
  },
  async notify(a) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const title = tt("li.notifTitle", { prio: tt(`li.prio.${a.call.priority || "normal"}`) });
    const options = {
      // The tag of the hub's Web Push message about the same dispatch (sw.js): one replaces the other.
      body: [a.call.title, a.call.address].filter(Boolean).join("\n"), tag: `${a.call_id}:dispatched`, renotify: true,
      requireInteraction: true, icon: "/liaison/icon.svg", badge: "/liaison/icon.svg",
      vibrate: [500, 200, 500, 200, 900], lang: lang(),
      data: { url: `/liaison/#/call/${a.call_id}`, call_id: a.call_id, assignment_id: a.id, reason: "dispatched", ack: true },
      actions: [{ action: "ack", title: tt("li.act.acknowledge") }],
    };
    try {
      const reg = "serviceWorker" in navigator ? await navigator.serviceWorker.getRegistration("/liaison/") : null;
      if (reg) await reg.showNotification(title, options);
      else { // a page notification cannot carry buttons (only a service worker's can)
        const { actions, ...plain } = options;
        new Notification(title, plain);
      }
      window.__xianghuAlerts && window.__xianghuAlerts.push({ kind: "notification", tag: options.tag });
    } catch (e) {
      console.warn("notification", e);
    }
  },
  ring(list) {
    for (const a of list) this.ringing.add(a.id);
    const first = list[0];
    $("ringing-text").textContent = tt("li.newCall", { title: first.call.title || first.call.number || "" });
    $("ringing").hidden = false;
    this.ringCount = 0;
    const once = () => {
      this.ringCount += 1;
      this.beep();
      this.vibrate();
      if (this.ringCount >= 12) this.stop();
    };
    once();
    clearInterval(this.ringTimer);
    this.ringTimer = setInterval(once, 5000);
    for (const a of list) this.notify(a);
  },
  stop(assignmentId = null) {
    if (assignmentId !== null) {
      this.ringing.delete(assignmentId);
      if (this.ringing.size) return;
    }
    this.ringing.clear();
    clearInterval(this.ringTimer);
    this.ringTimer = null;
    $("ringing").hidden = true;
    try { navigator.vibrate && navigator.vibrate(0); } catch { /* ignore */ }
  },
};

export function flushAlerts() {
  const list = [];
  for (const id of S.fresh) {
    const a = S.asg.get(id);
    S.seen.add(id);
    if (a && effectiveState(a) === "dispatched" && !CALL_FINAL.includes(a.call.state)) list.push(a);
  }
  S.fresh.clear();
  persist();
  if (list.length) Alerts.ring(list);
}

export function updateAlertBanner() {
  const needNotif = "Notification" in window && Notification.permission === "default";
  $("enable-alerts").hidden = !(needNotif || !Alerts.audioReady);
}

export async function enableAlerts() {
  Alerts.unlock();
  if ("Notification" in window && Notification.permission === "default") {
    try { await Notification.requestPermission(); } catch { /* old API or refused */ }
  }
  updateAlertBanner();
}
