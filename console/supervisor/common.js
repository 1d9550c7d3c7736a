// What the supervisor page's modules share: who is looking (me), the reference data, REST reads with errors
// that name their status and field, display names, and the loading / empty / failed state of a panel.
import { t, lang, langHeaders } from "/shared/i18n.js";
import { h } from "/shared/dom.js";
import { fmtDateTime, overdueText, toDate } from "/shared/format.js";
import { loadErrorText } from "/shared/loadstate.js";
import { tickMilestones } from "/shared/milestones.js";
import "/supervisor/strings.js";

export const S = { me: null, ref: null, skew: 0, selected: null };
export const $ = (id) => document.getElementById(id);
export const tt = (key, vars = {}) => t(key, vars);
// Now on the hub's clock (corrected by the welcome's server_time): overdue is the hub's judgement, not this PC's.
export const now = () => Date.now() + S.skew;

/** GET a JSON resource; a failure throws an Error with .status (0: no answer) and .field. */
export async function api(path) {
  let res;
  try {
    res = await fetch(path, { credentials: "same-origin", headers: langHeaders({ Accept: "application/json" }) });
  } catch (e) {
    throw Object.assign(new Error(String(e && e.message)), { status: 0, field: null });
  }
  if (res.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw Object.assign(new Error("unauthenticated"), { status: 401, field: null });
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(data.message || res.statusText), { status: res.status, field: data.field || null });
  return data;
}

export const name = (o) => (o ? (lang() === "en" ? o.name_en || o.name_zh : o.name_zh || o.name_en) : "");
export const fmt = (v) => (v ? fmtDateTime(v) : "—"); // one format: 2026-11-30 09:23
export const short = (v) => (v ? fmtDateTime(v).slice(5) : "—");

export function townshipName(id) {
  return name((S.ref.townships || []).find((x) => x.id === id)) || String(id);
}
function unitsOf(tw) {
  return typeof tw.units === "string" ? JSON.parse(tw.units) : tw.units || [];
}
export function targetName(target, townshipId) {
  if (target && target.startsWith("unit:")) {
    const id = Number(target.slice(5));
    for (const tw of S.ref.townships || []) {
      if (townshipId && tw.id !== townshipId) continue;
      const u = unitsOf(tw).find((x) => x.id === id);
      if (u) return name(u);
    }
    return target;
  }
  return name((S.ref.departments || []).find((d) => d.code === target)) || target;
}
export function categoryName(code) {
  return name((S.ref.categories || []).find((c) => c.code === code)) || code;
}

/** The evaluation scope of this user in words: 全县, 义桥镇, 公安 (every township). */
export function myScope() {
  const me = S.me;
  const parts = [];
  if (me.township_id) parts.push(townshipName(me.township_id));
  if (me.target) parts.push(targetName(me.target));
  return parts.join(" · ") || tt("e.county");
}

/** A failure in words: the hub's own message, in the UI's language (it answers by Accept-Language). */
export function errorText(e) {
  if (!e || e.status === 0) return tt("st.network");
  if (e.status === 403) return tt("st.forbidden", { scope: myScope() });
  if (e.status === 503) return loadErrorText(e); // the database is down: said so, not a bare status
  if (e.status === 422 && e.message) return e.message;
  return e.message ? `${tt("st.failed")}：${e.message}` : `${tt("st.failed")}（${e.status}）`;
}

/** Show a panel's state in its .state box: "loading", "empty" (with text), "failed" (with a retry), or "ok". */
export function setState(box, kind, { text = "", error = null, retry = null, mine = null } = {}) {
  const panel = box.closest("[data-panel]");
  if (panel) panel.dataset.state = kind;
  box.hidden = kind === "ok";
  box.className = `state state-${kind}`;
  if (kind === "loading") return box.replaceChildren(h("span", { class: "spinner", "aria-hidden": "true" }), tt("st.loading"));
  if (kind === "empty") return box.replaceChildren(text || tt("st.empty"));
  if (kind === "failed") {
    const forbidden = Boolean(error && error.status === 403);
    return box.replaceChildren(...[h("span", { class: "bad", role: "alert" }, error ? errorText(error) : text),
      retry && !forbidden ? h("button", { type: "button", class: "plain small retry", onclick: retry }, tt("st.retry")) : null,
      mine && forbidden ? h("button", { type: "button", class: "plain small mine", onclick: mine }, tt("st.mine")) : null,
    ].filter(Boolean));
  }
  return box.replaceChildren();
}

/** Keep every live 超时 marker (data-overdue-since) and step verdict current on the hub's clock. */
export function tick() {
  const n = now();
  tickMilestones(n);
  for (const el of document.querySelectorAll("[data-overdue-since]")) {
    const ms = n - toDate(el.dataset.overdueSince).getTime();
    el.hidden = ms <= 0;
    if (ms > 0) el.textContent = overdueText(ms);
  }
}
