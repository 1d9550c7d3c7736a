// The reason behind a figure: the assignments it counts (GET /api/v1/evaluation/assignments), with each clock's
// deadline, actual time and verdict and the reason an assignment was excluded; tabs for the related figures
// (a rate's on time / late / missed / ...), XLSX and CSV of the list, and each row opens the call's timeline.
import { h } from "/shared/dom.js";
import { lang } from "/shared/i18n.js";
import { escalationText, fmtDateTime, fmtMinSec, fmtNumber } from "/shared/format.js";
import { $, S, api, name, setState, tt } from "/supervisor/common.js";
import { openCall } from "/supervisor/detail.js";

const LIMIT = 50;
const CLOCKS = ["response", "arrive", "result"];
const KINDS = ["ack", "arrive", "resolve"];
const D = { open: false, seq: 0 };

const at = (v) => (v ? fmtDateTime(v, { seconds: true }).slice(5) : "—");

/** The figures of one column of the ranking, with the number of assignments each counts (null: not known here). */
function figuresOf(r, group) {
  const clock = (c) => [[`${c}.due`, r[c].due], [`${c}.on_time`, r[c].on_time], [`${c}.late`, r[c].late],
    [`${c}.missed`, r[c].missed], [`${c}.pending`, r[c].pending], [`${c}.excluded`, r[c].excluded]];
  const v = r.visits;
  switch (group) {
    case "received": return [["received", r.received], ["open", r.open], ["excluded", r.excluded]];
    case "response": case "arrive": return clock(group);
    case "result": return [...clock("result"), ["send_backs", null], ["reopened", null]];
    case "resolution": return [["visits.visited", v.visited], ["visits.resolved", v.resolved], ["visits.unresolved", v.visited - v.resolved]];
    case "satisfaction":
      return [["visits.visited", v.visited], ["visits.satisfied", v.satisfied], ["visits.unsatisfied", v.visited - v.satisfied]];
    case "excluded":
      return [["excluded", r.excluded], ["transfers.not_our_remit", r.transfers.not_our_remit],
        ["transfers.approved", r.transfers.approved], ["transfers.rejected", null]];
    case "esc":
      return KINDS.flatMap((k) => Object.entries(r.escalations[k] || {}).sort(([a], [b]) => a - b)
        .map(([level, n]) => [`escalations.${k}.${level}`, n]));
    default: return [];
  }
}

function figureLabel(fig) {
  const [head, tail, level] = fig.split(".");
  if (head === "escalations") return tt("fig.esc", { kind: tt(`k.${tail}`), level: escalationText(Number(level)) });
  if (CLOCKS.includes(head)) return tt(`fig.${tail}`);
  return tt(`fig.${fig}`);
}

/** The query of the row's assignments: the view's period and scope narrowed to the row. */
function rowQuery(r, data, periodQuery) {
  const q = new URLSearchParams(periodQuery);
  q.delete("group");
  if (data.group === "township") q.set("township_id", String(r.key.township_id));
  else if (r.key.target) q.set("target", r.key.target);
  if (data.scope.township_id) q.set("township_id", String(data.scope.township_id));
  if (data.scope.target) q.set("target", data.scope.target);
  return q;
}

export function closeDrill() {
  D.open = false;
  D.seq++;
  $("drill").hidden = true;
}

/** Open the list behind `fig` (null: the group's first figure) of row `r` of the scorecards `data` asked with
 *  `periodQuery`. */
export async function openDrill(r, rowName, group, fig, data, periodQuery) {
  const figures = figuresOf(r, group);
  Object.assign(D, { open: true, r, rowName, group, figures, base: rowQuery(r, data, periodQuery),
                     figure: fig || (figures.find(([, n]) => n) || figures[0] || [null])[0], items: [], total: 0 });
  $("drill").hidden = false;
  $("drill").scrollIntoView({ block: "start", behavior: "instant" });
  await load(0);
}

async function load(offset) {
  const seq = ++D.seq;
  const q = new URLSearchParams(D.base);
  q.set("figure", D.figure);
  const files = new URLSearchParams(q);
  files.set("lang", lang());
  for (const fmt of ["xlsx", "csv"]) $(`drill-${fmt}`).href = `/api/v1/evaluation/assignments.${fmt}?${files}`;
  q.set("limit", String(LIMIT));
  q.set("offset", String(offset));
  renderHead();
  if (!offset) {
    setState($("drill-state"), "loading");
    $("drill-table").hidden = true;
  }
  let data;
  try {
    data = await api(`/api/v1/evaluation/assignments?${q}`);
  } catch (e) {
    if (seq === D.seq) setState($("drill-state"), "failed", { error: e, retry: () => load(offset) });
    return;
  }
  if (seq !== D.seq) return;
  D.items = offset ? [...D.items, ...data.assignments] : data.assignments;
  D.total = data.total;
  renderHead();
  renderList();
}

function renderHead() {
  $("drill-title").textContent = tt("d.title", { name: D.rowName, group: tt(`g.${D.group}`) });
  $("drill-tabs").replaceChildren(...D.figures.map(([fig, n]) => h("button", {
    type: "button", role: "tab", class: `tab ${fig === D.figure ? "active" : ""}`, dataset: { figure: fig },
    "aria-selected": fig === D.figure ? "true" : "false",
    onclick: () => { D.figure = fig; load(0); } }, figureLabel(fig), n === null ? null : h("b", { class: "count" }, String(n)))));
}

function clockCell(c) {
  return h("td", { class: "clock" },
    h("span", { class: `verdict v-${c.verdict}` }, tt(`v.${c.verdict}`)),
    h("div", { class: "small muted mono" }, tt("d.due", { t: at(c.due) })),
    c.stopped_at ? h("div", { class: "small mono" }, tt("d.actual", { t: at(c.stopped_at), d: fmtMinSec(c.ms ?? 0) })) : null);
}

function escalationsText(a) {
  return KINDS.filter((k) => (a.escalations[k] || []).length)
    .map((k) => tt("fig.esc", { kind: tt(`k.${k}`), level: escalationText(Math.max(...a.escalations[k])) }))
    .join(lang() === "en" ? ", " : "、");
}

function renderList() {
  const cols = ["d.number", "d.township", "d.target", "d.dispatched", "d.response", "d.arrive", "d.result", "d.ended",
    "d.esc", "d.visit"];
  $("drill-head").replaceChildren(h("tr", {}, ...cols.map((k) => h("th", {}, tt(k)))));
  $("drill-body").replaceChildren(...D.items.map((a) => h("tr", {
    class: "row", tabindex: "0", dataset: { call: a.call_id, assignment: a.assignment_id },
    onclick: () => openCall(a.call_id), onkeydown: (e) => { if (e.key === "Enter") openCall(a.call_id); } },
  h("td", { class: "mono" }, fmtNumber(a.number, S.ref)),
  h("td", { class: "nowrap" }, name(a.township)),
  h("td", { class: "nowrap" }, name(a.target_name)),
  h("td", { class: "mono" }, at(a.dispatched_at)),
  ...CLOCKS.map((c) => clockCell(a.clocks[c])),
  h("td", {}, a.ended ? `${tt(`end.${a.ended.how}`)} ${at(a.ended.at)}` : ""),
  h("td", {}, escalationsText(a)),
  h("td", {}, a.visit ? tt("d.visitText", { resolved: tt(a.visit.resolved ? "sv.resolved" : "sv.unresolved"),
                                             s: a.visit.satisfaction }) : ""))));
  $("drill-total").textContent = tt("d.total", { n: D.total });
  $("drill-more").hidden = D.items.length >= D.total;
  $("drill-table").hidden = D.items.length === 0;
  setState($("drill-state"), D.items.length ? "ok" : "empty", { text: tt("d.empty") });
}

export function setupDrill() {
  $("drill-close").addEventListener("click", closeDrill);
  $("drill-more").addEventListener("click", () => load(D.items.length));
}
