// Formatting shared by the consoles: times in Asia/Shanghai, ages and countdowns, reference names.
import { lang } from "/shared/i18n.js";

export const TZ = "Asia/Shanghai";

/** A Date from an ISO string, epoch milliseconds or a Date; null for null/undefined/invalid. */
export function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

const fmtCache = new Map();
function formatter(key, options) {
  const k = `${lang()}|${key}`;
  if (!fmtCache.has(k)) {
    fmtCache.set(k, new Intl.DateTimeFormat(lang() === "en" ? "en-GB" : "zh-CN", { timeZone: TZ, hourCycle: "h23", ...options }));
  }
  return fmtCache.get(k);
}

function parts(d, key, options) {
  const out = {};
  for (const p of formatter(key, options).formatToParts(d)) out[p.type] = p.value;
  return out;
}

/** "08:05:09" in Asia/Shanghai. */
export function fmtTime(value, { seconds = true } = {}) {
  const d = toDate(value);
  if (!d) return "—";
  const p = parts(d, "hms", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return seconds ? `${p.hour}:${p.minute}:${p.second}` : `${p.hour}:${p.minute}`;
}

/** "2026-11-02 16:05" in Asia/Shanghai. */
export function fmtDateTime(value, { seconds = false } = {}) {
  const d = toDate(value);
  if (!d) return "—";
  const p = parts(d, "ymdhms", { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
                                 minute: "2-digit", second: "2-digit" });
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}${seconds ? ":" + p.second : ""}`;
}

/** Time alone when the date is today (Shanghai), else date and time. */
export function fmtWhen(value, now = Date.now()) {
  const d = toDate(value);
  if (!d) return "—";
  const day = (x) => fmtDateTime(x).slice(0, 10);
  return day(d) === day(new Date(now)) ? fmtTime(d) : fmtDateTime(d);
}

/** A duration (GLOSSARY.md): "45秒" / "12分" / "3小时5分" / "2天4小时" (zh) or "45s" / "12m" / "3h05m" / "2d4h" (en). */
export function fmtDuration(ms) {
  const zh = lang() !== "en";
  const s = Math.max(0, Math.floor(Math.abs(ms) / 1000));
  if (s < 60) return zh ? `${s}秒` : `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return zh ? `${m}分` : `${m}m`;
  const h = Math.floor(m / 60);
  const mm = String(m % 60).padStart(2, "0");
  if (h < 24) return zh ? `${h}小时${m % 60}分` : `${h}h${mm}m`;
  const d = Math.floor(h / 24);
  return zh ? `${d}天${h % 24}小时` : `${d}d${h % 24}h`;
}

/** "1分05秒" / "1m05s" (below an hour). */
export function fmtMinSec(ms) {
  const s = Math.max(0, Math.floor(Math.abs(ms) / 1000));
  if (s < 60 || s >= 3600) return fmtDuration(ms);
  const ss = String(s % 60).padStart(2, "0");
  return lang() !== "en" ? `${Math.floor(s / 60)}分${ss}秒` : `${Math.floor(s / 60)}m${ss}s`;
}

/** Age of something that started at `value`. */
export function fmtAge(value, now = Date.now()) {
  const d = toDate(value);
  return d ? fmtDuration(now - d.getTime()) : "—";
}

/** How loud a countdown is, from the time left and the window it had (deadlines count from dispatch):
 *  "ok" (calm) until half the window is left (at most the last 30 minutes), then "near" (warning), "critical" in the
 *  last fifth (at least the last 30 s, at most the last 10 minutes), "due" once breached. A 2-minute urgent
 *  acknowledgement is calm for its first minute, a warning for 30 s and critical for its last 30 s. */
export function urgencyLevel(ms, windowMs) {
  if (ms <= 0) return "due";
  const w = windowMs && windowMs > 0 ? windowMs : 10 * 60 * 1000; // no window known: as a 10-minute one
  const critical = Math.min(Math.max(0.2 * w, 30 * 1000), 10 * 60 * 1000);
  const warning = Math.max(Math.min(0.5 * w, 30 * 60 * 1000), critical);
  return ms <= critical ? "critical" : ms <= warning ? "near" : "ok";
}

/** Countdown to a deadline: {text, level, icon, ms} with level "ok" | "near" | "critical" | "due" (urgencyLevel);
 *  the text says it too (即将超时, 超时), and `icon` is a shape for the level, so colour is never the only cue. */
export function countdown(due, now = Date.now(), { start = null } = {}) {
  const d = toDate(due);
  if (!d) return { text: "—", level: "none", icon: "", ms: Infinity };
  const ms = d.getTime() - now;
  const zh = lang() !== "en";
  if (ms <= 0) return { text: zh ? `超时 ${fmtDuration(-ms)}` : `overdue ${fmtDuration(-ms)}`, level: "due", icon: "✖", ms };
  const s = toDate(start);
  const level = urgencyLevel(ms, s ? d.getTime() - s.getTime() : null);
  const left = ms < 10 * 60 * 1000 ? fmtMinSec(ms) : fmtDuration(ms); // the last minutes to the second
  const text = level === "critical" ? (zh ? `即将超时 剩 ${left}` : `${left} left, due soon`) : zh ? `剩 ${left}` : `${left} left`;
  return { text, level, icon: { ok: "", near: "▲", critical: "‼" }[level], ms };
}

/** Name in the current language from a reference item {name_zh, name_en}. */
export function refName(item, fallback = "") {
  if (!item) return fallback;
  return (lang() === "en" ? item.name_en : item.name_zh) || item.name_zh || item.name_en || fallback;
}

/** An index of the reference data: departments, categories, units by target code. */
export function indexReference(ref) {
  const targets = new Map();
  for (const d of ref.departments || []) targets.set(d.code, { ...d, kind: "department" });
  for (const tw of ref.townships || []) {
    for (const u of tw.units || []) {
      const code = u.code || `unit:${u.id}`;
      targets.set(code, { ...u, code, kind: "unit" });
    }
  }
  const categories = new Map((ref.categories || []).map((c) => [c.code, c]));
  return { targets, categories };
}

/** Display name of a target (department code or unit:<id>). */
export function targetName(index, code) {
  return refName(index && index.targets.get(code), code);
}

export function categoryName(index, code) {
  return refName(index && index.categories.get(code), code);
}

// -- call numbers: YIQIAO-2026-000123 in the API and the log, 义桥-2026-000123 on screen ----------------------

const NUMBER_RE = /^([A-Za-z0-9_]+)-(\d{4})-(\d+)$/;
const townshipIndex = new WeakMap();

function townshipsByCode(ref) {
  if (!townshipIndex.has(ref)) {
    townshipIndex.set(ref, new Map((ref.townships || []).map((tw) => [String(tw.code).toUpperCase(), tw])));
  }
  return townshipIndex.get(ref);
}

/** A township's name as it prefixes call numbers: 义桥镇 → 义桥, 中都街道 → 中都, 军屯乡 → 军屯. */
export function townshipShortName(tw) {
  const name = tw.name_zh || "";
  const short = name.replace(/(街道|镇|乡)$/, "");
  return short || name;
}

/** A call number for the screen: 义桥-2026-000123 (zh-CN) from YIQIAO-2026-000123 with the township's name in
 *  `ref` (GET /api/v1/reference); the ASCII form in English; numbers of another form (older calls) as they are. */
export function fmtNumber(number, ref) {
  const text = number || "";
  const m = NUMBER_RE.exec(text);
  if (!m || !ref || lang() === "en") return text;
  const tw = townshipsByCode(ref).get(m[1].toUpperCase());
  return tw ? `${townshipShortName(tw)}-${m[2]}-${m[3]}` : text;
}

/** Search text as the API matches it: a number typed as shown (义桥-2026-000123, 义桥镇-2026-…) in its ASCII form. */
export function numberQuery(text, ref) {
  const q = (text || "").trim();
  if (!ref) return q;
  for (const tw of ref.townships || []) {
    for (const name of [tw.name_zh, townshipShortName(tw)]) {
      if (name && q.startsWith(name + "-")) return String(tw.code).toUpperCase() + q.slice(name.length);
    }
  }
  return q;
}

/** The clocks still running in each assignment state (the hub's WAITING_FOR, dispatch/core/transitions.py). */
export const RUNNING_CLOCKS = { dispatched: ["ack", "arrive", "resolve"], acknowledged: ["arrive", "resolve"], on_scene: ["resolve"] };

/** The earliest deadline of an assignment's running clocks ({kind, due: Date}), or null when none runs. */
export function runningDeadline(a) {
  let best = null;
  for (const kind of RUNNING_CLOCKS[a.state] || []) {
    const due = toDate(a[`${kind}_due`]);
    if (due && (!best || due < best.due)) best = { kind, due };
  }
  return best;
}

/** How long (ms) an assignment is past the deadline of a clock still running, at `now`; 0 when it is not. */
export function overdueMs(a, now = Date.now()) {
  const d = runningDeadline(a);
  return d ? Math.max(0, now - d.due.getTime()) : 0;
}

/** The highest escalation level of the department's clocks that still counts (0: never escalated); the
 *  operator's own review clock (a transfer request waiting) is not the department's. */
export function escalationLevel(a) {
  return Math.max(0, ...Object.entries(a.levels || {}).filter(([k]) => k !== "review").map(([, v]) => Number(v)));
}

/** "超时 2分" / "2m overdue". */
export function overdueText(ms) {
  return lang() !== "en" ? `超时 ${fmtDuration(ms)}` : `${fmtDuration(ms)} overdue`;
}

/** "二级督办" / "level 2 escalation" (GLOSSARY). */
export function escalationText(level) {
  const zh = "一二三四五六七八九十";
  return lang() !== "en" ? `${zh[level - 1] || level}级督办` : `level ${level} escalation`;
}

/** The acted time of an event whose body carries one (an action a phone queued offline), else null. */
export function actedAt(body) {
  return body && body.acted_at ? toDate(body.acted_at) : null;
}
