// The liaison page's state (my assignments, cached details), its connection, and the helpers its views share.
import { lang, langHeaders } from "/shared/i18n.js";
import { readJSON, writeJSON } from "/shared/storage.js";
import { fmtDateTime, fmtNumber } from "/shared/format.js";

export const STORE = "xianghu.liaison";
export const CONN_KEY = `${STORE}.conn`;
export const ACTIONABLE = ["dispatched", "acknowledged", "on_scene"];
export const WAITING = ["reported", "declined"];
export const CALL_FINAL = ["closed", "cancelled"];
export const NEXT_STATE = { acknowledge: "acknowledged", arrive: "on_scene", report_result: "reported", decline: "declined" };
export const DUE_BY_STATE = { dispatched: ["ack", "ack_due"], acknowledged: ["arrive", "arrive_due"], on_scene: ["resolve", "resolve_due"] };
export const CALL_FIELDS = ["number", "category", "title", "description", "address", "lat", "lon", "priority", "source",
  "reporter_name", "reporter_phone", "state", "township_id", "created_at"];

export const $ = (id) => document.getElementById(id);

// -- small helpers ---------------------------------------------------------------------------------

export function ms(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return value;
  const n = Date.parse(value);
  return Number.isNaN(n) ? null : n;
}

export function load(key, fallback) {
  return readJSON(`${STORE}.${key}`, fallback);
}

export function save(key, value) {
  writeJSON(`${STORE}.${key}`, value); // storage full: keep working in memory
}

// One date-time format everywhere (GLOSSARY.md): 2026-11-30 09:23, Asia/Shanghai.
export const fmtTime = (v) => (ms(v) === null ? "—" : fmtDateTime(new Date(ms(v))));

export function fmtSpan(msLeft) {
  const s = Math.floor(Math.abs(msLeft) / 1000);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  const p = (n) => String(n).padStart(2, "0");
  if (d > 0) return lang() === "en" ? `${d}d ${hh}h` : `${d}天${hh}小时`;
  if (hh > 0) return `${hh}:${p(mm)}:${p(ss)}`;
  return `${p(mm)}:${p(ss)}`;
}

let toastTimer = null;
export function toast(text, kind = "") {
  const el = $("toast");
  el.textContent = text;
  el.className = `li-toast ${kind}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

// -- state -------------------------------------------------------------------------------------------

export const S = {
  me: null,
  ref: load("ref", null),
  asg: new Map(),       // assignment id -> assignment record of my target, with .call (snapshot) and ._seq
  details: load("details", {}), // call id -> last fetched detail (for offline reading)
  skew: 0,              // hub clock minus this phone's clock (ms), from welcome.server_time
  view: null,           // call id shown in the detail view, or null
  caughtUp: false,
  fresh: new Set(),     // assignment ids dispatched since the last caught_up, not yet alerted
  seen: new Set(load("seen", [])),
  refusalsShown: new Set(),
  busy: new Set(),       // assignment ids whose action is being prepared (e.g. waiting for the location)
};
export const now = () => Date.now() + S.skew;

export function persist() {
  save("state", { user_id: S.me && S.me.id, asg: [...S.asg.values()] });
  save("seen", [...S.seen].slice(-500));
}

export function targetName(target) {
  if (!target) return "";
  const ref = S.ref;
  if (ref) {
    if (target.startsWith("unit:")) {
      const id = Number(target.slice(5));
      for (const tw of ref.townships || []) {
        const units = typeof tw.units === "string" ? JSON.parse(tw.units) : tw.units || [];
        const u = units.find((x) => x.id === id);
        if (u) return lang() === "en" ? u.name_en : u.name_zh;
      }
    }
    const d = (ref.departments || []).find((x) => x.code === target);
    if (d) return lang() === "en" ? d.name_en : d.name_zh;
  }
  return target;
}

export function categoryName(code) {
  const c = S.ref && (S.ref.categories || []).find((x) => x.code === code);
  return c ? (lang() === "en" ? c.name_en : c.name_zh) : code || "";
}

/** A call number as every console shows it (义桥-2026-000123; console/shared/format.js). */
export function callNumber(number) {
  return fmtNumber(number, S.ref);
}

export function townshipName(id) {
  const tw = S.ref && (S.ref.townships || []).find((x) => x.id === id);
  return tw ? (lang() === "en" ? tw.name_en : tw.name_zh) : "";
}

export async function api(path, options = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...options,
    headers: langHeaders({ Accept: "application/json", ...(options.headers || {}) }) });
  if (res.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new Error("unauthenticated");
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(data.message || res.statusText), { status: res.status, data });
  return data;
}

/** The live connection, made by ./liaison.js once the user is known (null before). */
export let conn = null;
export function setConn(c) { conn = c; }
