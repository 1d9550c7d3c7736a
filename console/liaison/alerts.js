// Alerts on a new call: a repeated beep (WebAudio), vibration and a system notification, until acknowledged.
// Loud alerts (an escalation of my deadline, a 催办, a send-back, a withdrawal or cancellation, a rejected
// transfer request): a banner with the reason that stays until dismissed, sound and vibration; kept on the
// phone so a reload replays them (with a tap to resume the sound where the browser blocks it until one).
import { lang } from "/shared/i18n.js";
import { h } from "/shared/dom.js";
import { RUNNING_CLOCKS, escalationText, fmtDuration } from "/shared/format.js";
import { $, CALL_FINAL, S, callNumber, fmtTime, load, persist, save } from "./state.js";
import { tt } from "./strings.js";
import { effectiveState } from "./outbox.js";

// The service worker's lock over its notifications (sw.js inTurn): a show from the page must not overlap a read
// there, or Chromium deletes the notification being shown from its database.
const NOTIFICATIONS_LOCK = "xianghu-notifications";
let notificationTurns = Promise.resolve();

function inTurn(work) {
  if (navigator.locks) return navigator.locks.request(NOTIFICATIONS_LOCK, work);
  const done = notificationTurns.then(work);
  notificationTurns = done.catch(() => undefined);
  return done;
}

/** A system notification through the liaison service worker (it can carry 响应), else a plain page one. */
async function showSystemNotification(title, options) {
  const reg = "serviceWorker" in navigator ? await navigator.serviceWorker.getRegistration("/liaison/") : null;
  if (reg) { await inTurn(() => reg.showNotification(title, options)); return; }
  const { actions, ...plain } = options; // a page notification cannot carry buttons (only a service worker's can)
  new Notification(title, plain);
}

export const Alerts = {
  ctx: null,
  ringTimer: null,
  ringCount: 0,
  ringing: new Set(),
  unlock() {
    try {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return;
      if (!this.ctx) {
        this.ctx = new AC();
        // Sound allowed or blocked (autoplay policy) can change after the fact: the prompts follow it.
        this.ctx.addEventListener("statechange", () => (Loud.mine().length ? renderLoud() : updateAlertBanner()));
      }
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
      await showSystemNotification(title, options);
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
  if (document.getElementById("li-alerts-resume") && Alerts.audioReady) { renderLoud(); return; } // a tap unlocked it
  const needNotif = "Notification" in window && Notification.permission === "default";
  // The loud alerts' own prompt ("点击恢复提醒音") says it better while they wait for a tap.
  $("enable-alerts").hidden = !(needNotif || !Alerts.audioReady) || !!document.getElementById("li-alerts-resume");
}

export async function enableAlerts() {
  Alerts.unlock();
  if ("Notification" in window && Notification.permission === "default") {
    try { await Notification.requestPermission(); } catch { /* old API or refused */ }
  }
  updateAlertBanner();
}

// -- loud alerts -----------------------------------------------------------------------------------------

const LOUD_KEY = "loud";
const LOUD_REPEAT_MS = 8000;
const LOUD_MAX_RINGS = 8; // about a minute of sound; the banner stays until dismissed
const LOUD_KINDS = {
  "assignment.escalated": () => "escalated", "assignment.nudged": () => "nudged",
  "assignment.reopened": (ev) => (ev.body?.cause === "return_visit" ? "reopened" : "sent_back"),
  "assignment.withdrawn": (ev) => (ev.call_state === "cancelled" ? "cancelled" : "withdrawn"),
  "assignment.transfer_rejected": () => "rejected",
};

export const Loud = {
  list: (() => { const v = load(LOUD_KEY, []); return Array.isArray(v) ? v : []; })(),
  timer: null,
  rings: 0,
  restored: false,
  mine() {
    return this.list.filter((x) => S.me && x.user_id === S.me.id);
  },
  save() {
    save(LOUD_KEY, this.list.slice(-30));
  },
  ring() {
    this.rings = 0;
    const once = () => {
      if (!this.mine().length || this.rings >= LOUD_MAX_RINGS) return this.silence();
      this.rings += 1;
      Alerts.beep();
      try { if (navigator.vibrate) navigator.vibrate([800, 200, 800, 200, 800]); } catch { /* not allowed */ }
      return undefined;
    };
    once();
    clearInterval(this.timer);
    this.timer = setInterval(once, LOUD_REPEAT_MS);
  },
  silence() {
    clearInterval(this.timer);
    this.timer = null;
  },
  add(alert) {
    if (this.list.some((x) => x.key === alert.key)) return;
    this.list.push(alert);
    this.save();
    window.__xianghuAlerts && window.__xianghuAlerts.push({ kind: "loud", what: alert.kind, key: alert.key });
    renderLoud();
    this.ring();
    loudNotification(alert);
  },
  dismiss(key) {
    this.list = key === null ? this.list.filter((x) => !S.me || x.user_id !== S.me.id) : this.list.filter((x) => x.key !== key);
    this.save();
    renderLoud();
    if (!this.mine().length) this.silence();
  },
};

window.xianghu = { ...(window.xianghu || {}), alerts: Alerts, loud: Loud }; // for the console and the tests

/** An event about one of my assignments that must reach the liaison loudly, with its reason. */
export function loudEvent(ev, a) {
  const kindOf = LOUD_KINDS[ev.event_type];
  if (!kindOf || !S.me) return;
  const b = ev.body || {};
  if (ev.event_type === "assignment.escalated" && (b.late_record || b.deadline_kind === "review")) return;
  const kind = kindOf(ev);
  const text = kind === "escalated"
    ? tt("li.esc", { kind: tt(`li.due.${b.deadline_kind}`), esc: escalationText(b.level), d: fmtDuration(b.overdue_ms ?? 0) })
    : kind === "nudged" ? (b.text || tt("li.loud.nudgeDefault")) : (b.reason || "");
  Loud.add({
    key: `${ev.township_id}:${ev.seq}`, kind, level: b.level ?? null, deadline_kind: b.deadline_kind ?? null, text,
    actor: ev.actor && ev.actor.role !== "system" ? ev.actor.name || "" : "", at: ev.at, call_id: ev.call_id,
    assignment_id: ev.assignment_id, number: a.call.number || "", title: a.call.title || "", user_id: S.me.id,
  });
}

/** An escalation alert goes by itself once its clock stopped (responded, on scene, reported, or the call ended). */
export function reconcileLoud() {
  const before = Loud.list.length;
  Loud.list = Loud.list.filter((x) => {
    if (x.kind !== "escalated") return true;
    const a = S.asg.get(x.assignment_id);
    if (!a) return true;
    if (CALL_FINAL.includes(a.call.state)) return false;
    return (RUNNING_CLOCKS[effectiveState(a)] || []).includes(x.deadline_kind);
  });
  if (Loud.list.length !== before) {
    Loud.save();
    renderLoud();
    if (!Loud.mine().length) Loud.silence();
  }
}

/** After a reload: the alerts nobody dismissed show again and sound again (a tap first, where the browser
 *  allows sound only after one). */
export function restoreLoud() {
  if (Loud.restored || !S.me) return;
  Loud.restored = true;
  setInterval(reconcileLoud, 2000); // actions taken on this phone (even queued offline) stop an escalation's alert
  reconcileLoud();
  if (!Loud.mine().length) return;
  Alerts.unlock();
  renderLoud();
  for (const x of Loud.mine()) window.__xianghuAlerts && window.__xianghuAlerts.push({ kind: "loud", what: x.kind, key: x.key, replayed: true });
  Loud.ring();
  setTimeout(renderLoud, 300); // the audio context may start running a moment after it was made
}

function loudTitle(x) {
  return x.kind === "escalated" ? tt("li.loud.escalated", { esc: escalationText(x.level) }) : tt(`li.loud.${x.kind}`);
}

/** A system notification while the page is open but not in front (a push, when subscribed, tells a closed
 *  one): the tag of the hub's Web Push message about the same call and reason (sw.js), so one replaces the
 *  other, with 响应 on it while the assignment still waits for it. */
async function loudNotification(x) {
  if (document.visibilityState === "visible") return; // the banner, the sound and the vibration say it
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const a = S.asg.get(x.assignment_id);
  const ack = !!a && effectiveState(a) === "dispatched" && ["escalated", "nudged"].includes(x.kind);
  const options = {
    body: [[callNumber(x.number), x.title].filter(Boolean).join(" "), x.text].filter(Boolean).join("\n"),
    tag: `${x.call_id}:${x.kind}`, renotify: true, requireInteraction: x.kind === "escalated",
    icon: "/liaison/icon.svg", badge: "/liaison/icon.svg", vibrate: [800, 200, 800, 200, 800], lang: lang(),
    data: { url: `/liaison/#/call/${x.call_id}`, call_id: x.call_id, assignment_id: x.assignment_id, reason: x.kind,
            number: x.number || null, ack },
    actions: ack ? [{ action: "ack", title: tt("li.act.acknowledge") }] : [],
  };
  const title = `${tt("li.title")} · ${loudTitle(x)}`;
  try {
    await showSystemNotification(title, options);
  } catch (e) {
    console.warn("notification", e);
  }
}

function loudBox() {
  let box = document.getElementById("li-alerts");
  if (!box) {
    box = h("section", { id: "li-alerts", class: "li-alerts", "aria-live": "assertive" });
    $("ringing").after(box);
    box.addEventListener("click", (e) => {
      const resume = e.target.closest("[data-resume]");
      if (resume) {
        Alerts.unlock();
        Alerts.beep();
        setTimeout(renderLoud, 300);
        return;
      }
      const dismiss = e.target.closest("[data-dismiss]");
      if (dismiss) { Loud.dismiss(dismiss.dataset.dismiss || null); return; }
      const open = e.target.closest("[data-call]");
      if (open) location.hash = `#/call/${open.dataset.call}`;
    });
  }
  return box;
}

export function renderLoud() {
  if (!S.me) return;
  const box = loudBox();
  const mine = Loud.mine();
  const nodes = [];
  if (mine.length && !Alerts.audioReady) {
    nodes.push(h("button", { type: "button", class: "li-alerts-resume", id: "li-alerts-resume", dataset: { resume: "1" } },
      tt("li.loud.resume")));
  }
  for (const x of [...mine].reverse()) {
    const reasonLabel = ["nudged", "escalated"].includes(x.kind) ? "" : tt("li.loud.reason");
    nodes.push(h("div", { class: `li-alert k-${x.kind}`, role: "alert", dataset: { key: x.key, kind: x.kind } },
      h("div", { class: "li-alert-main", dataset: { call: x.call_id } },
        h("div", { class: "li-alert-title" }, `⚠ ${loudTitle(x)}`),
        h("div", { class: "li-alert-call" }, [callNumber(x.number), x.title].filter(Boolean).join(" · ")),
        x.text ? h("div", { class: "li-alert-text" }, reasonLabel ? `${reasonLabel}${x.text}` : x.text) : null,
        h("div", { class: "li-alert-who" }, [x.actor, fmtTime(x.at)].filter(Boolean).join(" · "))),
      h("button", { type: "button", dataset: { dismiss: x.key } }, tt("li.gotIt"))));
  }
  if (mine.length > 1) {
    nodes.push(h("button", { type: "button", class: "li-alerts-all", dataset: { dismiss: "" } }, tt("li.loud.dismissAll")));
  }
  box.replaceChildren(...nodes);
  box.hidden = nodes.length === 0;
  updateAlertBanner();
}
