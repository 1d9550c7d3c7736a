// The evaluation (考核) first: the ranking of the stationed departments (or townships) for a period, each figure a
// button that opens the assignments behind it, each score with its formula and components. The period, scope,
// grouping and weight preset are in the page's address, so a view can be shared and reloaded.
import { h } from "/shared/dom.js";
import { lang } from "/shared/i18n.js";
import { fmtDateTime } from "/shared/format.js";
import { $, S, api, name, setState, targetName, townshipName, tt } from "/supervisor/common.js";
import { closeDrill, openDrill } from "/supervisor/drill.js";
import { updateCharts } from "/supervisor/charts.js";

export const P = { mode: "month", month: "", from: "", to: "", township_id: "", target: "", group: "target", preset: "" };
const E = { data: null, open: null, seq: 0 };
const URL_KEYS = ["month", "from", "to", "township_id", "target", "group", "preset"];
const RATE_COLUMNS = [["response", "response_rate"], ["arrive", "arrive_rate"], ["result", "result_rate"],
  ["resolution", "resolution_rate"], ["satisfaction", "satisfaction_rate"]];

const pct = (rate) => (rate === null || rate === undefined ? "—" : `${(100 * rate).toFixed(1)}%`);
const score = (v) => (v === null || v === undefined ? "—" : v.toFixed(1));
const county = () => !S.me.township_id; // sees every township (a county supervisor, an admin, a department head)

/** The period and scope of the view as query parameters (the scorecards, drill-down and export requests share them). */
export function periodQuery({ group = false } = {}) {
  const q = new URLSearchParams();
  if (P.mode === "range" && P.from && P.to) {
    q.set("from", P.from);
    q.set("to", P.to);
  } else if (P.month) {
    q.set("month", P.month);
  }
  if (P.township_id) q.set("township_id", P.township_id);
  if (P.target) q.set("target", P.target);
  if (P.preset) q.set("preset", P.preset);
  if (group) q.set("group", P.group);
  return q;
}

function readAddress() {
  const u = new URLSearchParams(location.search);
  for (const k of URL_KEYS) if (u.get(k)) P[k] = u.get(k);
  if (!u.get("group")) P.group = S.me.role === "department_head" ? "township" : "target";
  if (P.from && P.to) P.mode = "range";
}

function writeAddress() {
  const u = new URLSearchParams(location.search);
  for (const k of URL_KEYS) u.delete(k);
  for (const [k, v] of periodQuery({ group: true })) u.set(k, v);
  const qs = u.toString();
  history.replaceState(null, "", `${location.pathname}${qs ? "?" + qs : ""}${location.hash}`);
}

function fillControls() {
  const opt = (value, label) => h("option", { value }, label);
  $("ev-mode").replaceChildren(opt("month", tt("e.byMonth")), opt("range", tt("e.byRange")));
  $("ev-township").replaceChildren(opt("", tt("e.county")), ...S.ref.townships.map((tw) => opt(tw.id, townshipName(tw.id))));
  $("ev-group").replaceChildren(opt("target", tt("e.group.target")), opt("township", tt("e.group.township")));
  $("ev-township").closest("label").hidden = !county();
  $("ev-group").closest("label").hidden = !county();
}

/** The months to pick from: the two years up to the hub's today (a browser's month input would speak its own
 *  language, not the page's). */
function monthOptions() {
  const list = [];
  let [y, m] = fmtDateTime(E.data ? E.data.as_of : Date.now()).slice(0, 7).split("-").map(Number);
  for (let i = 0; i < 24; i++) {
    list.push(`${y}-${String(m).padStart(2, "0")}`);
    if (--m === 0) [y, m] = [y - 1, 12];
  }
  if (P.month && !list.includes(P.month)) list.push(P.month);
  return list.sort().reverse().map((v) => h("option", { value: v },
    lang() === "en" ? v : `${v.slice(0, 4)}年${Number(v.slice(5))}月`));
}

function syncControls() {
  $("ev-mode").value = P.mode;
  $("ev-month").replaceChildren(...monthOptions());
  $("ev-month").value = P.month;
  $("ev-from").value = P.from;
  $("ev-to").value = P.to;
  $("ev-township").value = P.township_id;
  $("ev-group").value = P.group;
  for (const el of document.querySelectorAll("[data-mode]")) el.hidden = el.dataset.mode !== P.mode;
  if (E.data) {
    const presetName = (p) => (tt(`preset.${p}`) === `preset.${p}` ? p : tt(`preset.${p}`));
    $("ev-preset").replaceChildren(...E.data.presets.map((p) => h("option", { value: p }, presetName(p))));
    $("ev-preset").value = P.preset || E.data.preset;
  }
}

function downloads() {
  const q = periodQuery({ group: true });
  q.set("lang", lang());
  for (const fmt of ["xlsx", "csv"]) $(`ev-${fmt}`).href = `/api/v1/evaluation/scorecards.${fmt}?${q}`;
}

export async function loadScorecards() {
  const seq = ++E.seq;
  writeAddress();
  syncControls();
  downloads();
  closeDrill();
  setState($("rank-state"), "loading");
  $("rank").hidden = true;
  let data;
  try {
    data = await api(`/api/v1/evaluation/scorecards?${periodQuery({ group: true })}`);
  } catch (e) {
    if (seq !== E.seq) return;
    $("ev-title").textContent = "";
    $("ev-asof").textContent = "";
    setState($("rank-state"), "failed", { error: e, retry: loadScorecards, mine: showMine });
    updateCharts(null);
    return;
  }
  if (seq !== E.seq) return;
  E.data = data;
  if (!P.month && data.period.month && P.mode === "month") P.month = data.period.month; // the hub's "last month"
  if (!P.preset) P.preset = data.preset;
  writeAddress();
  syncControls();
  downloads();
  render();
  updateCharts(data);
}

/** After a 403: back to the user's own scope. */
function showMine() {
  P.township_id = "";
  P.target = "";
  loadScorecards();
}

function periodText(p) {
  return p.month || tt("e.range", { from: p.from, to: p.to });
}

function rowKey(r) {
  return E.data.group === "township" ? String(r.key.township_id) : r.key.target;
}

function rowName(r) {
  return name(r);
}

function figure(text, r, group, fig) {
  return h("button", { type: "button", class: "fig", dataset: { group, figure: fig },
    onclick: () => openDrill(r, rowName(r), group, fig, E.data, periodQuery()) }, text);
}

function rateCell(r, col, rate) {
  const value = r.rates[rate];
  let num;
  let den;
  if (col === "resolution" || col === "satisfaction") {
    num = r.visits[col === "resolution" ? "resolved" : "satisfied"];
    den = r.visits.visited;
  } else {
    num = r[col].on_time;
    den = r[col].due;
  }
  const first = col === "resolution" || col === "satisfaction" ? "visits.visited" : `${col}.due`;
  return h("td", { class: "num", dataset: { col } }, r.received ? figure(pct(value), r, col, first) : "—",
    den ? h("div", { class: "frac small" }, `${num}/${den}`) : null);
}

function changeCell(r) {
  const c = r.change || {};
  const out = [];
  if (c.score === null || c.score === undefined) out.push(h("span", { class: "muted", title: tt("c.noPrev") }, "—"));
  else if (c.score > 0) out.push(h("span", { class: "up" }, `▲ ${tt("c.points", { n: c.score.toFixed(1) })}`));
  else if (c.score < 0) out.push(h("span", { class: "down" }, `▼ ${tt("c.points", { n: (-c.score).toFixed(1) })}`));
  else out.push(h("span", { class: "muted" }, tt("c.flat")));
  if (c.rank) out.push(h("div", { class: "small muted" }, tt(c.rank > 0 ? "c.rankUp" : "c.rankDown", { n: Math.abs(c.rank) })));
  return h("td", { class: "num", dataset: { col: "change" } }, ...out);
}

function escalations(r) {
  let n = 0;
  for (const levels of Object.values(r.escalations || {})) for (const v of Object.values(levels)) n += v;
  return n;
}

function formulaRow(r, span) {
  const comps = r.score.components;
  const terms = comps.map((c) => `${c.weight}×${tt(`rate.${c.rate}`)}`).join(" + ");
  const colOf = Object.fromEntries(RATE_COLUMNS.map(([col, rate]) => [rate, col]));
  const line = (c) => h("tr", { dataset: { rate: c.rate } },
    h("td", {}, tt(`rate.${c.rate}`)),
    h("td", { class: "num" }, String(c.weight)),
    h("td", { class: "num" }, c.value === null ? "—" : c.effective_weight.toFixed(4)),
    h("td", { class: "num" }, c.value === null ? h("span", { class: "muted" }, tt("f.noDen"))
      : figure(pct(c.value), r, colOf[c.rate], colOf[c.rate].match(/resolution|satisfaction/) ? "visits.visited" : `${colOf[c.rate]}.due`)),
    h("td", { class: "num" }, c.points === null ? "—" : c.points.toFixed(2)));
  return h("tr", { class: "formula", dataset: { formulaFor: rowKey(r) } }, h("td", { colspan: String(span) },
    h("div", { class: "formula-box" },
      h("strong", {}, tt("f.title", { name: rowName(r) })),
      h("p", { class: "formula-text" }, tt("f.formula", { terms })),
      h("table", { class: "components" },
        h("thead", {}, h("tr", {}, ...["f.rate", "f.weight", "f.eff", "f.value", "f.points"].map((k) => h("th", {}, tt(k))))),
        h("tbody", {}, comps.map(line)),
        h("tfoot", {}, h("tr", {}, h("td", { colspan: "4" }, tt("f.total")),
          h("td", { class: "num total" }, r.score.value === null ? tt("f.none") : score(r.score.value))))))));
}

function render() {
  const d = E.data;
  const dept = d.scope.target ? targetName(d.scope.target) : "";
  const scope = d.township ? name(d.township) : tt("e.county");
  $("ev-title").textContent = dept ? tt("e.headingDept", { scope, dept, period: periodText(d.period) })
    : tt("e.heading", { scope, period: periodText(d.period) });
  $("ev-asof").textContent = tt("e.asOf", { t: fmtDateTime(d.as_of), prev: periodText(d.previous_period) });
  const cols = ["c.rank", d.group === "township" ? "c.township" : "c.target", "c.score", "c.change",
    ...RATE_COLUMNS.map(([c]) => `c.${c}`), "c.received", "c.excluded", "c.esc"];
  $("rank-head").replaceChildren(h("tr", {}, ...cols.map((k) => h("th", { title: k === "c.score" ? tt("c.scoreHint") : null }, tt(k)))));
  const body = [];
  for (const r of d.rows) {
    const key = rowKey(r);
    const open = E.open === key;
    body.push(h("tr", { class: `rank-row ${open ? "open" : ""} ${r.unit ? "unit" : ""}`, dataset: { key } },
      h("td", { class: "num rank" }, r.rank ?? "—"),
      h("td", { class: "who" }, rowName(r), r.unit ? h("span", { class: "tag" }, tt("c.unit")) : null),
      h("td", { class: "num", dataset: { col: "score" } }, h("button", { type: "button", class: "score",
        "aria-expanded": open ? "true" : "false", title: tt("c.scoreHint"),
        onclick: () => { E.open = open ? null : key; render(); } }, score(r.score.value))),
      changeCell(r),
      ...RATE_COLUMNS.map(([col, rate]) => rateCell(r, col, rate)),
      h("td", { class: "num", dataset: { col: "received" } }, figure(String(r.received), r, "received", "received")),
      h("td", { class: "num", dataset: { col: "excluded" } }, r.received ? figure(String(r.excluded), r, "excluded", "excluded") : "0"),
      h("td", { class: "num", dataset: { col: "esc" } }, escalations(r) ? figure(String(escalations(r)), r, "esc", null) : "0")));
    if (open) body.push(formulaRow(r, cols.length));
  }
  $("rank-body").replaceChildren(...body);
  $("rank").hidden = false;
  const any = d.rows.some((r) => r.received > 0);
  setState($("rank-state"), any ? "ok" : "empty");
  $("rank").hidden = false;
}

export function setupEvaluation() {
  readAddress();
  fillControls();
  const apply = () => loadScorecards();
  $("ev-mode").addEventListener("change", () => { P.mode = $("ev-mode").value; syncControls(); if (P.mode === "month" || (P.from && P.to)) apply(); });
  $("ev-month").addEventListener("change", () => { if ($("ev-month").value) { P.month = $("ev-month").value; apply(); } });
  for (const id of ["ev-from", "ev-to"]) {
    $(id).addEventListener("change", () => { P.from = $("ev-from").value; P.to = $("ev-to").value; if (P.from && P.to) apply(); });
  }
  $("ev-township").addEventListener("change", () => { P.township_id = $("ev-township").value; apply(); });
  $("ev-group").addEventListener("change", () => { P.group = $("ev-group").value; E.open = null; apply(); });
  $("ev-preset").addEventListener("change", () => { P.preset = $("ev-preset").value; apply(); });
}
