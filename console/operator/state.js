// The operator page's state, its connection and alarm, and the small helpers its views share.
import { Connection } from "/shared/conn.js";
import { refName } from "/shared/format.js";
import { langHeaders } from "/shared/i18n.js";
import { Alarm } from "./alarm.js";

export const OPEN_CALL_STATES = ["intake", "dispatched", "in_progress", "review", "accepted", "visited"];
export const FINAL_CALL = new Set(["closed", "cancelled"]);
export const CLOSED_ASG = new Set(["accepted", "transferred", "withdrawn"]);
export const PRIO_RANK = { urgent: 0, normal: 1, low: 2 };
export const NEXT_DEADLINE = { dispatched: "ack", acknowledged: "arrive", on_scene: "resolve" };
export const ASG_TIME = {
  "assignment.acknowledged": "acknowledged_at", "assignment.arrived": "on_scene_at", "assignment.reported": "reported_at",
  "assignment.accepted": "accepted_at", "assignment.transferred": "closed_at", "assignment.withdrawn": "closed_at",
};
export const CALL_ACTIONS = {
  dispatch: ["intake", "dispatched", "in_progress", "review"],
  accept: ["review"], send_back: ["review"], return_visit: ["accepted"], close: ["accepted", "visited"],
  cancel: OPEN_CALL_STATES, note: OPEN_CALL_STATES,
};

export const $ = (sel, root = document) => root.querySelector(sel);
export const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

export const S = {
  me: null, ref: null, idx: null, township: null,
  calls: new Map(), // open calls by id (REST doc shape, kept current by events)
  presence: {}, detail: null, detailSeqs: new Set(),
  duty: null, // GET /api/v1/duty: the township's targets, their liaisons, who is online (./duty.js)
  notify: null, // GET /api/v1/notify/status: whether the notification channels deliver (./notify.js)
  loaded: false, // the open calls were loaded once (alarms of calls no longer open may be cleared)
  loadedAt: null, // when they were last loaded (hub clock, ms): a list kept after a failed reload says its age
  loadError: null, // the last load's failure, shown on the board with 重试 until a load succeeds
  retryLoad: null, // what 重试 runs (./operator.js: the start, then ./model.js retryLoad)
  loading: null, reloadAgain: false, buffer: [], fetching: new Map(),
  skew: 0, seen: 0, flash: new Set(),
  filters: { q: "", state: "", target: "", category: "", flag: "" },
};
export const conn = new Connection({ storageKey: "xianghu.operator" });
export const alarm = new Alarm("xianghu.operator.mute");
window.xianghu = { conn, state: S, alarm };

export const now = () => Date.now() + S.skew;

// -- REST ------------------------------------------------------------------------------------------

export async function api(method, path, body) {
  const res = await fetch(path, {
    method, credentials: "same-origin",
    headers: langHeaders(body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw { code: "unauthenticated", message: "login required", field: null };
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    throw { code: data.code || `http_${res.status}`, message: data.message || res.statusText, field: data.field ?? null,
            status: res.status };
  }
  return data;
}

export function toast(text, kind = "ok") {
  const el = document.createElement("div");
  el.className = `toast ${kind}`;
  el.setAttribute("role", "status");
  el.textContent = text;
  document.body.append(el);
  setTimeout(() => el.remove(), 4000);
}

export function targetOptions(exclude) {
  const depts = S.ref.departments.filter((d) => S.township.departments.includes(d.code)).map((d) => [d.code, refName(d)]);
  const units = (S.township.units || []).map((u) => [`unit:${u.id}`, refName(u)]);
  return [...depts, ...units].filter(([c]) => !exclude.has(c));
}
