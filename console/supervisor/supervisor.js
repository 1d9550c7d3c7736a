// Supervisor review (督查考核), read-only county view: calls of every township with filters, and one
// call's detail with its assignments and full timeline. No command is ever sent from this page (the hub
// refuses them anyway: the supervisor's scope is read_only). Live updates come through the shared
// connection module; the data itself is read over REST.
import { applyI18n, t, lang, setLang } from "/shared/i18n.js";
import { Connection } from "/shared/conn.js";
import { h } from "/shared/dom.js";
import { RUNNING_CLOCKS, escalationLevel, escalationText, fmtDuration, fmtNumber, numberQuery, overdueText, runningDeadline, toDate } from "/shared/format.js";

const L = {
  "zh-CN": {
    "sv.title": "乡呼 · 督查考核", "sv.readOnly": "只读", "sv.township": "镇街", "sv.state": "状态",
    "sv.department": "部门/力量", "sv.category": "类别", "sv.priority": "紧急程度", "sv.since": "起始日期",
    "sv.until": "截止日期", "sv.search": "搜索", "sv.searchHint": "编号、标题、地址或描述", "sv.apply": "查询",
    "sv.reset": "重置", "sv.number": "编号", "sv.titleCol": "标题", "sv.parts": "派单部门", "sv.created": "登记时间",
    "sv.none": "没有符合条件的诉求", "sv.more": "加载更多", "sv.count": "共显示 {n} 条",
    "sv.all": "全部", "sv.open": "未结（全部进行中）", "sv.close": "关闭",
    "sv.status.live": "实时", "sv.status.connecting": "连接中", "sv.status.offline": "离线",
    "sv.f.address": "地址", "sv.f.description": "描述", "sv.f.source": "来源", "sv.f.reporter": "反映人",
    "sv.f.created": "登记时间", "sv.f.closed": "结束时间", "sv.f.visit": "回访", "sv.f.cancel": "撤销原因",
    "sv.assignments": "派单与响应", "sv.timeline": "处置记录（事件日志）", "sv.a.target": "部门/力量",
    "sv.a.state": "状态", "sv.a.dispatched": "派单", "sv.a.ack": "响应", "sv.a.arrive": "报到", "sv.a.report": "办结",
    "sv.a.due": "时限（响应/报到/办结）", "sv.a.result": "结果/理由", "sv.late": "超时", "sv.dueAt": "限 {t}", "sv.loadFailed": "加载失败",
    "sv.visit": "{resolved}，满意度 {s}/5", "sv.resolved": "已解决", "sv.unresolved": "未解决",
    "sv.seq": "序号", "sv.esc": "{kind} {esc}（超时 {d}）",
    "sv.flag": "超时/督办", "sv.flag.overdue": "超时未办", "sv.flag.escalated": "有督办",
    "sv.voided": "不计入：实际办理在此之前", "sv.acted": "实际 {t}，收到 {r}", "sv.adjusted": "设备时间已校正",
    "sv.k.ack": "响应", "sv.k.arrive": "报到", "sv.k.resolve": "办结", "sv.system": "系统",
    "prio.urgent": "紧急", "prio.normal": "一般", "prio.low": "较低",
    "cs.intake": "待派单", "cs.dispatched": "已派单", "cs.in_progress": "处置中", "cs.review": "待审核",
    "cs.accepted": "已审核", "cs.visited": "已回访", "cs.closed": "已归档", "cs.cancelled": "已撤销",
    "as.dispatched": "待响应", "as.acknowledged": "已响应", "as.on_scene": "已到场", "as.reported": "已办结",
    "as.accepted": "已通过", "as.declined": "申请转派", "as.transferred": "已转派", "as.withdrawn": "已撤回",
    "src.hotline_12345": "12345热线", "src.grid": "网格员上报", "src.resident_app": "嘟来办",
    "src.mini_program": "汶诉即办", "src.walk_in": "来访", "src.patrol": "巡查发现",
    "ev.call.created": "登记诉求", "ev.call.accepted": "审核通过", "ev.call.sent_back": "退回重办",
    "ev.call.visited": "回访", "ev.call.closed": "归档", "ev.call.cancelled": "撤销", "ev.call.noted": "备注",
    "ev.assignment.dispatched": "派单", "ev.assignment.acknowledged": "响应", "ev.assignment.arrived": "到场报到",
    "ev.assignment.reported": "办结反馈", "ev.assignment.declined": "申请转派", "ev.assignment.transferred": "转派",
    "ev.assignment.withdrawn": "撤回派单", "ev.assignment.accepted": "结果通过", "ev.assignment.reopened": "退回重办",
    "ev.assignment.escalated": "超时督办",
    "ev.assignment.transfer_rejected": "驳回转派", "ev.call.lead_changed": "变更主办", "ev.call.reopened": "回访不满意·重办",
    "sv.k.review": "转派审核（指挥中心）",
  },
  en: {
    "sv.title": "Xianghu · Supervisor review", "sv.readOnly": "read-only", "sv.township": "Township",
    "sv.state": "State", "sv.department": "Department / unit", "sv.category": "Category", "sv.priority": "Priority",
    "sv.since": "From", "sv.until": "To", "sv.search": "Search", "sv.searchHint": "number, title, address, description",
    "sv.apply": "Apply", "sv.reset": "Reset", "sv.number": "Number", "sv.titleCol": "Title", "sv.parts": "Assigned to",
    "sv.created": "Registered", "sv.none": "No calls match", "sv.more": "Load more", "sv.count": "{n} shown",
    "sv.all": "All", "sv.open": "Open (not closed)", "sv.close": "Close",
    "sv.status.live": "Live", "sv.status.connecting": "Connecting", "sv.status.offline": "Offline",
    "sv.f.address": "Address", "sv.f.description": "Description", "sv.f.source": "Source", "sv.f.reporter": "Reporter",
    "sv.f.created": "Registered", "sv.f.closed": "Ended", "sv.f.visit": "Return visit", "sv.f.cancel": "Cancel reason",
    "sv.assignments": "Assignments and response", "sv.timeline": "Timeline (event log)", "sv.a.target": "Department / unit",
    "sv.a.state": "State", "sv.a.dispatched": "Dispatched", "sv.a.ack": "Acknowledged", "sv.a.arrive": "On scene",
    "sv.a.report": "Reported", "sv.a.due": "Deadlines (ack / scene / resolve)", "sv.a.result": "Result / reason",
    "sv.late": "late", "sv.dueAt": "due {t}", "sv.loadFailed": "Could not load", "sv.visit": "{resolved}, satisfaction {s}/5",
    "sv.resolved": "resolved", "sv.unresolved": "not resolved", "sv.seq": "Seq",
    "sv.esc": "{kind} {esc} ({d} overdue)",
    "sv.flag": "Overdue / escalated", "sv.flag.overdue": "Overdue", "sv.flag.escalated": "Escalated",
    "sv.voided": "not counted: acted before it", "sv.acted": "acted {t}, received {r}",
    "sv.adjusted": "device time corrected",
    "sv.k.ack": "acknowledge", "sv.k.arrive": "on scene", "sv.k.resolve": "resolve", "sv.system": "system",
    "prio.urgent": "Urgent", "prio.normal": "Normal", "prio.low": "Low",
    "cs.intake": "Intake", "cs.dispatched": "Dispatched", "cs.in_progress": "In progress", "cs.review": "In review",
    "cs.accepted": "Accepted", "cs.visited": "Visited", "cs.closed": "Closed", "cs.cancelled": "Cancelled",
    "as.dispatched": "To acknowledge", "as.acknowledged": "Acknowledged", "as.on_scene": "On scene",
    "as.reported": "Reported", "as.accepted": "Accepted", "as.declined": "Transfer requested",
    "as.transferred": "Transferred", "as.withdrawn": "Withdrawn",
    "src.hotline_12345": "12345 hotline", "src.grid": "Grid worker", "src.resident_app": "Resident app",
    "src.mini_program": "Mini-program", "src.walk_in": "Walk-in", "src.patrol": "Patrol",
    "ev.call.created": "Registered", "ev.call.accepted": "Accepted", "ev.call.sent_back": "Sent back",
    "ev.call.visited": "Return visit", "ev.call.closed": "Closed", "ev.call.cancelled": "Cancelled", "ev.call.noted": "Note",
    "ev.assignment.dispatched": "Dispatched", "ev.assignment.acknowledged": "Acknowledged",
    "ev.assignment.arrived": "On scene", "ev.assignment.reported": "Result reported",
    "ev.assignment.declined": "Transfer requested", "ev.assignment.transferred": "Transferred",
    "ev.assignment.withdrawn": "Withdrawn", "ev.assignment.accepted": "Result accepted",
    "ev.assignment.reopened": "Reopened", "ev.assignment.escalated": "Escalated",
    "ev.assignment.transfer_rejected": "Transfer rejected", "ev.call.lead_changed": "Lead changed",
    "ev.call.reopened": "Reopened after return visit", "sv.k.review": "transfer review (command centre)",
  },
};
const tt = (key, vars = {}) => t(key, vars, L);
const $ = (id) => document.getElementById(id);
const PAGE = 100;
const CALL_STATES = ["intake", "dispatched", "in_progress", "review", "accepted", "visited", "closed", "cancelled"];


const dtFmt = new Intl.DateTimeFormat(lang() === "en" ? "en-GB" : "zh-CN", { timeZone: "Asia/Shanghai",
  year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
const fmt = (v) => (v ? dtFmt.format(new Date(v)) : "—");
const name = (o) => (o ? (lang() === "en" ? o.name_en : o.name_zh) : "");

const S = { ref: null, calls: [], offset: 0, done: false, selected: null, detail: null, query: "", skew: 0 };
// Now on the hub's clock (corrected by the welcome's server_time): overdue is the hub's judgement, not this PC's.
const now = () => Date.now() + S.skew;

/** 超时 with how long, kept live by tick() while a running clock is past its deadline. */
function overdueMark(a) {
  const d = runningDeadline(a);
  return d ? h("b", { class: "mark mark-overdue", hidden: true, dataset: { overdueSince: d.due.toISOString() } }) : null;
}

function escalationMark(assignments) {
  const lvl = Math.max(0, ...(assignments || []).map(escalationLevel));
  return lvl ? h("b", { class: "mark mark-esc", dataset: { level: String(lvl) } }, escalationText(lvl)) : null;
}

function tick() {
  const n = now();
  for (const el of document.querySelectorAll("[data-overdue-since]")) {
    const ms = n - toDate(el.dataset.overdueSince).getTime();
    el.hidden = ms <= 0;
    if (ms > 0) el.textContent = overdueText(ms);
  }
}

async function api(path) {
  const res = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (res.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new Error("unauthenticated");
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(data.message || res.statusText), { status: res.status, data });
  return data;
}

function townshipName(id) {
  return name((S.ref.townships || []).find((x) => x.id === id)) || String(id);
}
function unitsOf(tw) {
  return typeof tw.units === "string" ? JSON.parse(tw.units) : tw.units || [];
}
function targetName(target, townshipId) {
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
function categoryName(code) {
  return name((S.ref.categories || []).find((c) => c.code === code)) || code;
}

function fillFilters() {
  const opt = (value, label) => h("option", { value }, label);
  $("f-township").replaceChildren(opt("", tt("sv.all")), ...S.ref.townships.map((tw) => opt(tw.id, name(tw))));
  $("f-state").replaceChildren(opt("", tt("sv.all")), opt("open", tt("sv.open")),
    ...CALL_STATES.map((s) => opt(s, tt(`cs.${s}`))));
  $("f-target").replaceChildren(opt("", tt("sv.all")), ...S.ref.departments.map((d) => opt(d.code, name(d))));
  $("f-category").replaceChildren(opt("", tt("sv.all")), ...S.ref.categories.map((c) => opt(c.code, name(c))));
  $("f-priority").replaceChildren(opt("", tt("sv.all")), ...["urgent", "normal", "low"].map((p) => opt(p, tt(`prio.${p}`))));
  $("f-flag").replaceChildren(opt("", tt("sv.all")), opt("overdue", tt("sv.flag.overdue")),
    opt("escalated", tt("sv.flag.escalated")));
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

async function loadCalls(reset = true) {
  if (reset) {
    S.query = queryString().toString();
    S.offset = 0;
  }
  const q = new URLSearchParams(S.query);
  q.set("limit", String(PAGE));
  q.set("offset", String(S.offset));
  try {
    const data = await api(`/api/v1/calls?${q}`);
    S.calls = reset ? data.calls : [...S.calls, ...data.calls];
    S.offset += data.calls.length;
    S.done = data.calls.length < PAGE;
  } catch (e) {
    $("count").textContent = `${tt("sv.loadFailed")}: ${e.message}`;
    return;
  }
  renderList();
}

function renderList() {
  $("rows").replaceChildren(...S.calls.map((c) => h("tr", {
    class: `row ${c.id === S.selected ? "selected" : ""} prio-${c.priority}`, dataset: { call: c.id, township: c.township_id },
    tabindex: "0", onclick: () => select(c.id), onkeydown: (e) => { if (e.key === "Enter") select(c.id); } },
  h("td", { class: "mono" }, fmtNumber(c.number, S.ref)),
  h("td", { class: "nowrap" }, townshipName(c.township_id)),
  h("td", { class: "nowrap" }, categoryName(c.category)),
  h("td", { class: "title" }, c.title),
  h("td", {}, h("span", { class: `prio prio-${c.priority}` }, tt(`prio.${c.priority}`))),
  h("td", {}, h("span", { class: `cs cs-${c.state}` }, tt(`cs.${c.state}`)), firstOverdue(c), escalationMark(c.assignments)),
  h("td", {}, h("div", { class: "parts" }, (c.assignments || []).map((a) => h("span", { class: `part as-${a.state}` },
    `${targetName(a.target, c.township_id)}·${tt(`as.${a.state}`)}`)))),
  h("td", { class: "mono" }, fmt(c.created_at)))));
  $("empty").hidden = S.calls.length > 0;
  $("more").hidden = S.done;
  $("count").textContent = tt("sv.count", { n: S.calls.length });
  tick();
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

async function select(id) {
  S.selected = id;
  history.replaceState(null, "", `#${id}`);
  renderList();
  await loadDetail();
}

async function loadDetail() {
  if (!S.selected) return;
  try {
    S.detail = await api(`/api/v1/calls/${S.selected}`);
  } catch (e) {
    S.detail = { error: e.message };
  }
  renderDetail();
}

const shortFmt = new Intl.DateTimeFormat(lang() === "en" ? "en-GB" : "zh-CN", { timeZone: "Asia/Shanghai",
  month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false });
const short = (v) => (v ? shortFmt.format(new Date(v)) : "—");

/** When it happened, and under it the deadline it had (red with the minutes late when missed). */
function timeCell(doneAt, due, running = null) {
  return h("td", { class: "mono" }, short(doneAt), lateness(doneAt, due),
    running && !doneAt ? h("b", { class: "mark mark-overdue", hidden: true, dataset: { overdueSince: toDate(due).toISOString() } }) : null,
    due ? h("div", { class: "due small" }, tt("sv.dueAt", { t: short(due) })) : null);
}

function lateness(doneAt, due) {
  if (!due) return null;
  const end = doneAt ? Date.parse(doneAt) : null;
  if (end !== null && end > Date.parse(due)) return h("span", { class: "late" }, ` ${overdueText(end - Date.parse(due))}`);
  return null;
}

/** Was this escalation voided by a later action whose acted time met its rung (voids_escalations)? */
function voided(e, timeline) {
  const b = e.body || {};
  return timeline.some((x) => x.assignment_id === e.assignment_id && x.seq > e.seq
    && ((x.body?.voids_escalations || {})[b.deadline_kind] || []).includes(b.level));
}

function timelineExtra(e, timeline) {
  const b = e.body || {};
  const out = [];
  if (e.type === "assignment.escalated" && voided(e, timeline)) out.push(h("span", { class: "voided" }, tt("sv.voided")));
  if (b.acted_at) out.push(h("span", { class: "acted" }, " ", tt("sv.acted", { t: fmt(b.acted_at), r: fmt(b.received_at || e.at) })));
  if (b.acted_at_adjusted) out.push(h("span", { class: "adjusted" }, tt("sv.adjusted")));
  return out;
}

function timelineText(e, townshipId) {
  const b = e.body || {};
  switch (e.type) {
    case "call.created": return [b.address, b.description].filter(Boolean).join(" · ");
    case "assignment.dispatched": return targetName(b.target, townshipId);
    case "assignment.arrived": return b.lat !== null && b.lat !== undefined ? `${b.lat}, ${b.lon}` : "";
    case "assignment.reported": return b.result || "";
    case "assignment.declined":
      return [b.reason, b.suggested_target ? `→ ${targetName(b.suggested_target, townshipId)}` : ""].filter(Boolean).join(" ");
    case "assignment.transferred": return `→ ${targetName(b.to_target, townshipId)}`;
    case "assignment.escalated":
      // the department's time past its deadline (overdue_ms), not the hub's delay in writing it (delay_ms)
      return tt("sv.esc", { kind: tt(`sv.k.${b.deadline_kind}`), esc: escalationText(b.level),
                            d: fmtDuration(b.overdue_ms ?? b.lateness_ms ?? 0) });
    case "call.visited":
      return [tt("sv.visit", { resolved: tt(b.resolved ? "sv.resolved" : "sv.unresolved"), s: b.satisfaction }), b.comment]
        .filter(Boolean).join(" · ");
    case "call.noted": return b.text || "";
    default: return b.reason || "";
  }
}

/** Is this kind's clock still running on the assignment (the call open)? */
function running(a, kind) {
  const open = S.detail && ["intake", "dispatched", "in_progress", "review"].includes(S.detail.state);
  return open && (RUNNING_CLOCKS[a.state] || []).includes(kind);
}

function renderDetail() {
  const box = $("detail");
  box.hidden = !S.selected;
  const c = S.detail;
  if (!c) return box.replaceChildren();
  if (c.error) return box.replaceChildren(h("p", { class: "bad" }, `${tt("sv.loadFailed")}: ${c.error}`));
  const tid = c.township_id;
  const field = (label, value) => (value === null || value === undefined || value === "" ? null
    : h("div", { class: "field" }, h("dt", {}, label), h("dd", {}, value)));
  const assignment = (a) => h("tr", { dataset: { assignment: a.id } },
    h("td", {}, targetName(a.target, tid)),
    h("td", {}, h("span", { class: `part as-${a.state}` }, tt(`as.${a.state}`))),
    h("td", { class: "mono" }, short(a.dispatched_at)),
    timeCell(a.acknowledged_at, a.ack_due, running(a, "ack")),
    timeCell(a.on_scene_at, a.arrive_due, running(a, "arrive")),
    timeCell(a.reported_at, a.resolve_due, running(a, "resolve")),
    h("td", {}, a.result || a.decline_reason || ""));
  box.replaceChildren(
    h("div", { class: "detail-head" },
      h("div", {}, h("span", { class: "mono" }, fmtNumber(c.number, S.ref)), " · ", townshipName(tid), " · ", categoryName(c.category), " · ",
        h("span", { class: `prio prio-${c.priority}` }, tt(`prio.${c.priority}`)), " · ",
        h("span", { class: `cs cs-${c.state}` }, tt(`cs.${c.state}`))),
      h("button", { type: "button", class: "plain", id: "detail-close",
        onclick: () => { S.selected = null; S.detail = null; history.replaceState(null, "", location.pathname); renderList(); renderDetail(); } },
      tt("sv.close"))),
    h("h2", {}, c.title),
    h("dl", { class: "fields" },
      field(tt("sv.f.address"), c.address), field(tt("sv.f.description"), c.description),
      field(tt("sv.f.source"), c.source ? tt(`src.${c.source}`) : ""),
      field(tt("sv.f.reporter"), [c.reporter_name, c.reporter_phone].filter(Boolean).join(" ")),
      field(tt("sv.f.created"), fmt(c.created_at)), field(tt("sv.f.closed"), c.closed_at ? fmt(c.closed_at) : ""),
      field(tt("sv.f.visit"), c.satisfaction ? tt("sv.visit", { resolved: tt(c.resolved ? "sv.resolved" : "sv.unresolved"), s: c.satisfaction }) : ""),
      field(tt("sv.f.cancel"), c.cancel_reason)),
    h("h3", {}, tt("sv.assignments")),
    h("div", { class: "scroll" }, h("table", { class: "asg" },
      h("thead", {}, h("tr", {}, ...["sv.a.target", "sv.a.state", "sv.a.dispatched", "sv.a.ack", "sv.a.arrive", "sv.a.report",
        "sv.a.result"].map((k) => h("th", {}, tt(k))))),
      h("tbody", {}, (c.assignments || []).map(assignment)))),
    h("h3", {}, tt("sv.timeline")),
    h("ol", { class: "timeline" }, (c.timeline || []).map((e) => h("li", { dataset: { type: e.type, seq: e.seq } },
      h("span", { class: "mono seq" }, `#${e.seq}`),
      h("span", { class: "mono" }, fmt(e.at)),
      h("strong", {}, tt(`ev.${e.type}`)),
      h("span", { class: "who" }, e.actor && e.actor.role === "system" ? tt("sv.system") : (e.actor && e.actor.name) || ""),
      h("span", { class: "text" }, timelineText(e, tid), ...timelineExtra(e, c.timeline || []))))),
  );
  tick();
}

let reloadTimer = null;
function scheduleReload() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => {
    loadCalls(true);
    if (S.selected) loadDetail();
  }, 800);
}

async function main() {
  applyI18n(document, L);
  let me;
  try {
    me = await api("/api/v1/me");
  } catch {
    return;
  }
  if (me.role === "operator" || me.role === "liaison") {
    location.href = `/${me.role}/`;
    return;
  }
  $("who").textContent = me.name;
  S.ref = await api("/api/v1/reference");
  fillFilters();
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); loadCalls(true); });
  for (const id of ["f-township", "f-state", "f-target", "f-category", "f-priority", "f-flag"]) {
    $(id).addEventListener("change", () => loadCalls(true));
  }
  $("f-reset").addEventListener("click", () => { $("filters").reset(); loadCalls(true); });
  $("more").addEventListener("click", () => loadCalls(false));
  $("lang").addEventListener("click", () => setLang(lang() === "en" ? "zh-CN" : "en"));
  $("logout").addEventListener("click", async () => {
    try { await fetch("/api/v1/logout", { method: "POST", credentials: "same-origin" }); } catch { /* offline */ }
    location.href = "/login";
  });
  await loadCalls(true);
  const fromHash = location.hash.slice(1);
  if (/^[0-9a-f-]{36}$/.test(fromHash)) select(fromHash);

  const conn = new Connection({ storageKey: "xianghu.supervisor.conn" });
  conn.addEventListener("welcome", (e) => { S.skew = e.detail.server_time - Date.now(); tick(); });
  conn.addEventListener("event", (e) => { if (e.detail.at > now()) S.skew += e.detail.at - now(); });
  setInterval(tick, 1000);
  const status = () => {
    $("conn").dataset.status = conn.status;
    $("conn-text").textContent = tt(`sv.status.${conn.status}`);
  };
  conn.addEventListener("status", status);
  conn.addEventListener("event", scheduleReload);
  conn.addEventListener("resync", scheduleReload);
  status();
  conn.start();
  document.body.dataset.ready = "1";
}

main();
