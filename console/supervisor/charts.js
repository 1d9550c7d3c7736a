// Charts of the evaluation with Apache ECharts (served by the hub at /vendor/echarts, no CDN): time taken per
// department (boxplot of box_ms), the composite score month by month, the high-frequency categories month by month,
// and the top grids and places of the last month. Each panel has its own loading / empty / failed state.
import { h } from "/shared/dom.js";
import { lang } from "/shared/i18n.js";
import { $, api, name, setState, tt } from "/supervisor/common.js";

const ECHARTS = "/vendor/echarts/echarts.esm.min.mjs";
const TOP_CATEGORIES = 8;
const C = { echarts: null, charts: new Map(), data: null, trendKey: null, trendSeq: 0, observer: null };
const minutes = (ms) => (ms === null || ms === undefined ? null : Math.round(ms / 600) / 100);

async function lib() {
  if (!C.echarts) C.echarts = await import(ECHARTS);
  return C.echarts;
}

/** The chart on element `id`, created once; ECharts follows the element's size. */
async function chart(id) {
  const echarts = await lib();
  let c = C.charts.get(id);
  if (!c) {
    c = echarts.init($(id), null, { renderer: "canvas", locale: lang() === "en" ? "EN" : "ZH" });
    C.charts.set(id, c);
    C.observer ||= new ResizeObserver((entries) => {
      for (const e of entries) C.charts.get(e.target.id)?.resize();
    });
    C.observer.observe($(id));
  }
  return c;
}

const BASE = {
  // richText tooltips are drawn on the canvas: no HTML with inline styles (the page's CSP forbids them)
  tooltip: { trigger: "item", renderMode: "richText", confine: true },
  textStyle: { fontFamily: '"Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei",sans-serif' },
  animation: false,
};

function show(panel, kind, opts = {}) {
  setState($(`${panel}-state`), kind, opts);
  $(`${panel}-body`).hidden = kind !== "ok";
}

async function drawBox() {
  const d = C.data;
  const clock = $("box-clock").value;
  const rows = d.rows.filter((r) => r[clock].box_ms);
  if (!rows.length) return show("ch-box", "empty", { text: tt("ch.noBox") });
  show("ch-box", "ok");
  const c = await chart("chart-box");
  c.setOption({
    ...BASE,
    grid: { left: 56, right: 16, top: 30, bottom: 60 },
    xAxis: { type: "category", data: rows.map(name), axisLabel: { interval: 0, rotate: rows.length > 8 ? 35 : 0 } },
    yAxis: { type: "value", name: tt("ch.minutes"), min: 0 },
    series: [{ type: "boxplot", name: tt(`k.${{ response: "ack", arrive: "arrive", result: "resolve" }[clock]}`),
      data: rows.map((r) => r[clock].box_ms.map(minutes)),
      tooltip: { formatter: (p) => {
        const v = p.data.length > 5 ? p.data.slice(-5) : p.data;
        return `${p.name}\n${["ch.min", "ch.q1", "ch.med", "ch.q3", "ch.max"]
          .map((k, i) => `${tt(k)} ${v[i]} ${tt("ch.minutes")}`).join("\n")}`;
      } } }],
  }, true);
}

async function drawScore(trend) {
  const series = trend.series.filter((s) => s.scores.some((v) => v !== null));
  if (!series.length) return show("ch-score", "empty", { text: tt("ch.noScore") });
  show("ch-score", "ok");
  const c = await chart("chart-score");
  c.setOption({
    ...BASE,
    tooltip: { ...BASE.tooltip, trigger: "axis" },
    legend: { type: "scroll", top: 0 },
    grid: { left: 48, right: 16, top: 36, bottom: 28 },
    xAxis: { type: "category", data: trend.months },
    yAxis: { type: "value", min: 0, max: 100 },
    series: series.map((s) => ({ type: "line", name: name(s), data: s.scores, connectNulls: false, symbolSize: 6 })),
  }, true);
}

async function drawCategories(trends) {
  const cats = trends.categories.filter((c) => c.total > 0);
  if (!cats.length) return show("ch-cat", "empty", { text: tt("ch.noCat") });
  show("ch-cat", "ok");
  const top = cats.slice(0, TOP_CATEGORIES);
  const rest = cats.slice(TOP_CATEGORIES);
  const series = top.map((c) => ({ type: "bar", stack: "calls", name: name(c), data: c.counts }));
  if (rest.length) {
    series.push({ type: "bar", stack: "calls", name: tt("ch.other"),
      data: trends.months.map((_, i) => rest.reduce((n, c) => n + c.counts[i], 0)) });
  }
  const c = await chart("chart-cat");
  c.setOption({
    ...BASE,
    tooltip: { ...BASE.tooltip, trigger: "axis" },
    legend: { type: "scroll", top: 0 },
    grid: { left: 48, right: 16, top: 36, bottom: 28 },
    xAxis: { type: "category", data: trends.months },
    yAxis: { type: "value", minInterval: 1 },
    series,
  }, true);
}

function drawTop(trends) {
  $("ch-top-title").textContent = tt("ch.top", { m: trends.last_month });
  if (!trends.grids.length && !trends.places.length) return show("ch-top", "empty", { text: tt("ch.noTop") });
  show("ch-top", "ok");
  const table = (head, rows) => h("table", { class: "top" }, h("thead", {}, h("tr", {}, ...head.map((k) => h("th", {}, tt(k))))),
    h("tbody", {}, rows));
  $("top-grids").replaceChildren(table(["ch.grid", "e.township", "ch.count", "ch.prev"], trends.grids.map((g) => h("tr", {},
    h("td", {}, g.name), h("td", {}, name(g.township)), h("td", { class: "num" }, String(g.count)),
    h("td", { class: "num" }, String(g.previous))))));
  $("top-places").replaceChildren(table(["ch.place", "e.township", "ch.times"], trends.places.map((p) => h("tr", {},
    h("td", {}, p.address), h("td", {}, name(p.township)), h("td", { class: "num" }, String(p.count))))));
}

/** The month the trends end with and the scope they cover, as query parameters. */
function trendQuery(data) {
  const q = new URLSearchParams({ months: "12", month: data.period.month || data.period.to.slice(0, 7) });
  if (data.scope.township_id) q.set("township_id", String(data.scope.township_id));
  if (data.scope.target) q.set("target", data.scope.target);
  if (data.preset) q.set("preset", data.preset);
  return q;
}

async function loadTrends() {
  const q = trendQuery(C.data);
  const seq = ++C.trendSeq;
  for (const p of ["ch-score", "ch-cat", "ch-top"]) show(p, "loading");
  const [score, trends] = await Promise.allSettled([api(`/api/v1/evaluation/score-trend?${q}`),
    api(`/api/v1/evaluation/trends?${q}`)]);
  if (seq !== C.trendSeq) return;
  C.trendKey = q.toString();
  try {
    if (score.status === "fulfilled") await drawScore(score.value);
    else show("ch-score", "failed", { error: score.reason, retry: loadTrends });
    if (trends.status === "fulfilled") {
      await drawCategories(trends.value);
      drawTop(trends.value);
    } else {
      for (const p of ["ch-cat", "ch-top"]) show(p, "failed", { error: trends.reason, retry: loadTrends });
    }
  } catch {
    for (const p of ["ch-score", "ch-cat"]) show(p, "failed", { text: tt("ch.failed"), retry: loadTrends });
  }
}

/** New scorecards (or their failure): redraw the boxplot, and the trends when their month or scope changed. */
export async function updateCharts(data) {
  C.data = data;
  // Without scorecards (their panel says why, with a retry) the charts have nothing to draw.
  $("charts").hidden = !data;
  if (!data) {
    C.trendKey = null;
    return;
  }
  try {
    await drawBox();
  } catch {
    show("ch-box", "failed", { text: tt("ch.failed"), retry: () => updateCharts(C.data) });
  }
  if (trendQuery(data).toString() !== C.trendKey) await loadTrends();
}

/** Charts drawn while their tab was hidden have no size: fit them when it shows. */
export function resizeCharts() {
  for (const c of C.charts.values()) c.resize();
}

export function setupCharts() {
  const opt = (value) => h("option", { value }, tt(`k.${{ response: "ack", arrive: "arrive", result: "resolve" }[value]}`));
  $("box-clock").replaceChildren(opt("response"), opt("arrive"), opt("result"));
  $("box-clock").addEventListener("change", () => { if (C.data) drawBox(); });
}
