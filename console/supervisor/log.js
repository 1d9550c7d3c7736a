// The call log (呼叫记录): calls in scope with filters (overdue / escalated among them), live 超时 and 督办 markers,
// paging by "load more". A live event changes only what it is about: the rows of the calls it names are re-read
// and replaced in place, a new call that fits the filters is added on top marked 新 — the other rows, the pages
// loaded by 加载更多 and the scroll position stay as they are (an event anywhere in the county must not reload the
// list). Only a resync (the hub lost track) re-reads the rows shown.
import { h } from "/shared/dom.js";
import { escalationLevel, escalationText, fmtNumber, numberQuery, runningDeadline } from "/shared/format.js";
import { $, S, api, categoryName, errorText, fmt, setState, targetName, tick, townshipName, tt } from "/supervisor/common.js";
import { openCall, onSelect } from "/supervisor/detail.js";
import { showLoadState } from "/shared/loadstate.js";

export const PAGE = 50;
const MAX_LIMIT = 500; // GET /api/v1/calls answers at most 500 per request
const CALL_STATES = ["intake", "dispatched", "in_progress", "review", "accepted", "visited", "closed", "cancelled"];
const L = { calls: [], done: false, query: "", loaded: false, fresh: new Set() };

function overdueMark(a) {
  const d = runningDeadline(a);
  return d ? h("b", { class: "mark mark-overdue", hidden: true, dataset: { overdueSince: d.due.toISOString() } }) : null;
}

function escalationMark(assignments) {
  const lvl = Math.max(0, ...(assignments || []).map(escalationLevel));
  return lvl ? h("b", { class: "mark mark-esc", dataset: { level: String(lvl) } }, escalationText(lvl)) : null;
}

/** The call's overdue marker: from the earliest deadline among its assignments' running clocks. */
function firstOverdue(c) {
  const open = ["intake", "dispatched", "in_progress", "review"].includes(c.state);
  let best = null;
  for (const a of open ? c.assignments || [] : []) {
    const d = runningDeadline(a);
    if (d && (!best || d.due < runningDeadline(best).due)) best = a;
  }
  return best ? overdueMark(best) : null;
}

function fillFilters() {
  const opt = (value, label) => h("option", { value }, label);
  $("f-township").replaceChildren(opt("", tt("sv.all")), ...S.ref.townships.map((tw) => opt(tw.id, townshipName(tw.id))));
  $("f-state").replaceChildren(opt("", tt("sv.all")), opt("open", tt("sv.open")),
    ...CALL_STATES.map((s) => opt(s, tt(`call.${s}`))));
  $("f-target").replaceChildren(opt("", tt("sv.all")), ...S.ref.departments.map((d) => opt(d.code, targetName(d.code))));
  $("f-category").replaceChildren(opt("", tt("sv.all")), ...S.ref.categories.map((c) => opt(c.code, categoryName(c.code))));
  $("f-priority").replaceChildren(opt("", tt("sv.all")), ...["urgent", "normal", "low"].map((p) => opt(p, tt(`prio.${p}`))));
  $("f-flag").replaceChildren(opt("", tt("sv.all")), opt("overdue", tt("sv.flag.overdue")),
    opt("escalated", tt("sv.flag.escalated")));
  // One township (a township leader) or one department (a department head): nothing to choose there.
  $("f-township").closest("label").hidden = S.ref.townships.length < 2;
  $("f-target").closest("label").hidden = Boolean(S.me.target);
}

function queryString() {
  const q = new URLSearchParams();
  const v = (id) => $(id).value.trim();
  if (v("f-township")) q.set("township_id", v("f-township"));
  if (v("f-state") === "open") q.set("open", "true");
  else if (v("f-state")) q.append("state", v("f-state"));
  if (v("f-target")) q.set("target", v("f-target"));
  if (v("f-category")) q.set("category", v("f-category"));
  if (v("f-priority")) q.set("priority", v("f-priority"));
  if (v("f-flag")) q.set(v("f-flag"), "true");
  if (v("f-since")) q.set("since", `${v("f-since")}T00:00:00+08:00`);
  if (v("f-until")) {
    const d = new Date(`${v("f-until")}T00:00:00+08:00`);
    d.setUTCDate(d.getUTCDate() + 1); // the whole end day (Asia/Shanghai) is included
    q.set("until", d.toISOString());
  }
  if (v("f-q")) q.set("q", numberQuery(v("f-q"), S.ref));
  return q;
}

async function fetchCalls(offset, limit) {
  const q = new URLSearchParams(L.query);
  q.set("limit", String(limit));
  q.set("offset", String(offset));
  return (await api(`/api/v1/calls?${q}`)).calls;
}

/** A new query (filters changed): the first page. */
export async function loadCalls() {
  L.query = queryString().toString();
  const query = L.query;
  setState($("log-state"), "loading");
  try {
    const calls = await fetchCalls(0, PAGE);
    if (query !== L.query) return; // a newer query is on its way
    L.calls = calls;
    L.done = calls.length < PAGE;
    L.fresh.clear();
  } catch (e) {
    setState($("log-state"), "failed", { error: e, retry: loadCalls });
    return;
  }
  L.loaded = true;
  L.loadedAt = Date.now() + S.skew;
  render();
}

async function loadMore() {
  try {
    const calls = await fetchCalls(L.calls.length, PAGE);
    const seen = new Set(L.calls.map((c) => c.id));
    L.calls = [...L.calls, ...calls.filter((c) => !seen.has(c.id))];
    L.done = calls.length < PAGE;
  } catch (e) {
    $("count").textContent = errorText(e);
    return;
  }
  render();
}

/** Live update: re-read the rows shown down to the last of them (new calls come in on top and push it down),
 *  so "load more" pages stay loaded; the scroll position is kept. */
export async function refreshCalls() {
  if (!L.loaded) return loadCalls();
  const query = L.query;
  const want = Math.max(PAGE, L.calls.length);
  const last = L.calls.length ? L.calls[L.calls.length - 1].id : null;
  const got = [];
  let done = false;
  try {
    while (got.length < want + MAX_LIMIT) { // bounded: the last row may have left the filter meanwhile
      const limit = Math.min(MAX_LIMIT, Math.max(PAGE, want - got.length));
      const page = await fetchCalls(got.length, limit);
      got.push(...page);
      if (page.length < limit) {
        done = true;
        break;
      }
      if (got.length >= want && (!last || got.some((c) => c.id === last))) break;
    }
  } catch {
    return; // the rows shown stay; the next update tries again
  }
  if (query !== L.query) return;
  const scrollY = window.scrollY;
  const seen = new Set();
  const before = new Map(L.calls.map((c) => [c.id, JSON.stringify(c)]));
  L.calls = got.filter((c) => !seen.has(c.id) && seen.add(c.id));
  L.done = done;
  // Rows whose call did not change keep their node; only the changed and the new ones are drawn again.
  const nodes = new Map([...$("rows").children].map((tr) => [tr.dataset.call, tr]));
  $("rows").replaceChildren(...L.calls.map((c) => (before.get(c.id) === JSON.stringify(c) && nodes.get(c.id)) || rowOf(c)));
  setState($("log-state"), "ok");
  renderCounts();
  tick();
  window.scrollTo(window.scrollX, scrollY);
}

function rowOf(c) {
  return h("tr", {
    class: `row ${c.id === S.selected ? "selected" : ""} prio-${c.priority}${L.fresh.has(c.id) ? " fresh" : ""}`,
    dataset: { call: c.id, township: c.township_id },
    tabindex: "0", onclick: () => openCall(c.id), onkeydown: (e) => { if (e.key === "Enter") openCall(c.id); } },
  h("td", { class: "mono" }, fmtNumber(c.number, S.ref),
    L.fresh.has(c.id) ? h("b", { class: "mark mark-new" }, tt("sv.new")) : null),
  h("td", { class: "nowrap" }, townshipName(c.township_id)),
  h("td", { class: "nowrap" }, categoryName(c.category)),
  h("td", { class: "title" }, c.title),
  h("td", {}, h("span", { class: `prio prio-${c.priority}` }, tt(`prio.${c.priority}`))),
  h("td", {}, h("span", { class: `cs cs-${c.state}` }, tt(`call.${c.state}`)), firstOverdue(c), escalationMark(c.assignments)),
  h("td", {}, h("div", { class: "parts" }, (c.assignments || []).map((a) => h("span", { class: `part as-${a.state}` },
    `${targetName(a.target, c.township_id)}·${tt(`asg.${a.state}`)}`)))),
  h("td", { class: "mono" }, fmt(c.created_at)));
}

function renderCounts() {
  $("empty").hidden = L.calls.length > 0;
  $("more").hidden = L.done;
  $("count").textContent = tt("sv.count", { n: L.calls.length });
}

function render() {
  setState($("log-state"), "ok");
  $("rows").replaceChildren(...L.calls.map(rowOf));
  renderCounts();
  tick();
}

/** Live: the calls named by events since the last update, re-read one by one and replaced in place. */
export async function updateCalls(ids) {
  if (!L.loaded) return;
  const query = L.query;
  const unknown = [];
  for (const id of ids) {
    const i = L.calls.findIndex((c) => c.id === id);
    if (i < 0) { unknown.push(id); continue; }
    let doc;
    try {
      doc = await api(`/api/v1/calls/${id}`);
    } catch {
      continue; // the row stays as it was; the next event about it tries again
    }
    if (query !== L.query) return;
    const { timeline, attachments, ...call } = doc;
    const at = L.calls.findIndex((c) => c.id === id);
    if (at < 0) continue;
    L.calls[at] = { ...L.calls[at], ...call };
    const old = $("rows").querySelector(`tr[data-call="${CSS.escape(id)}"]`);
    if (old) old.replaceWith(rowOf(L.calls[at]));
  }
  if (!unknown.length) return tick();
  // New calls: those of the first page (newest first, this query) not shown yet go on top, marked 新.
  let first;
  try {
    first = await fetchCalls(0, PAGE);
  } catch {
    return;
  }
  if (query !== L.query) return;
  const shown = new Set(L.calls.map((c) => c.id));
  const added = first.filter((c) => !shown.has(c.id) && unknown.includes(c.id));
  if (!added.length) return tick();
  const scrollY = window.scrollY;
  const height = document.documentElement.scrollHeight;
  for (const c of added) L.fresh.add(c.id);
  L.calls = [...added, ...L.calls];
  $("rows").prepend(...added.map(rowOf));
  renderCounts();
  tick();
  // Rows added above a reader who scrolled down push the page: keep what they were reading where it was.
  if (scrollY > 0) window.scrollTo(window.scrollX, scrollY + document.documentElement.scrollHeight - height);
}

/** The live connection's state over the list: while it reconnects, the rows shown may be out of date. */
export function showConnState(status) {
  showLoadState($("log-conn"), status === "offline" && L.loaded ? "stale" : "ok", { loadedAt: L.loadedAt });
}

export function setupLog() {
  fillFilters();
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); loadCalls(); });
  for (const id of ["f-township", "f-state", "f-target", "f-category", "f-priority", "f-flag"]) {
    $(id).addEventListener("change", () => loadCalls());
  }
  $("f-reset").addEventListener("click", () => { $("filters").reset(); loadCalls(); });
  $("more").addEventListener("click", loadMore);
  onSelect((id) => {
    for (const tr of $("rows").querySelectorAll("tr.row")) tr.classList.toggle("selected", tr.dataset.call === id);
  });
}
