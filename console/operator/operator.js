// The operator's live console: the township's open calls, presence, intake, one call's timeline and actions.
import { Connection, uuid4 } from "/shared/conn.js";
import { addStrings, applyI18n, lang, setLang, t } from "/shared/i18n.js";
import { categoryName, countdown, fmtAge, fmtDateTime, fmtWhen, indexReference, refName, targetName, toDate } from "/shared/format.js";
import { Alarm } from "/operator/alarm.js";

addStrings({
  "zh-CN": {
    brand: "乡呼 · 指挥中心", newCall: "新建呼叫 (N)", searchPh: "搜索 编号/地点/事由 (/)", fState: "状态",
    fTarget: "部门", fCategory: "类别", allStates: "全部状态", allTargets: "全部部门", allCategories: "全部类别",
    needsAction: "需处理", colPrio: "等级", colCall: "呼叫", colPlace: "地点", colAge: "时长", colDepts: "各部门状态 · 时限",
    empty: "暂无符合条件的呼叫", count: "{n} 件在办", presence: "部门在线", online: "{n} 人在线", none: "无人在线",
    units: "镇属力量 (N)", departments: "派驻部门 (7)",
    createTitle: "新建呼叫（问 → 派）", fCategoryL: "类别", fPriority: "紧急程度", fAddress: "地点", fTitle: "事由",
    fTitlePh: "留空则取描述首句", fDescription: "情况描述", fTargets: "派往部门（可多选，联合执法）",
    fSource: "来源", fReporter: "反映人", fPhone: "联系电话", formHint: "Enter 提交 · Esc 关闭",
    cancelBtn: "取消", submitCall: "派 单", created: "已创建 {number}", choose: "请选择",
    muteOn: "声音：关", muteOff: "声音：开", alarmTitle: "超时升级", seeCall: "查看", ackAlarm: "知道了",
    ackAll: "全部知悉", alarmText: "{number} {category} · {target} {kind}超时（第 {level} 级）",
    info: "基本信息", asgs: "派单", timeline: "处置记录", actions: "操作", reporter: "反映人", source: "来源",
    createdAt: "受理时间", description: "描述", place: "地点", level: "升级 {n} 级", due: "时限",
    result: "办结情况", declineReason: "转派理由", suggested: "建议转给",
    "act.dispatch": "增派部门", "act.reroute": "转派", "act.withdraw": "撤回", "act.accept": "审核通过",
    "act.send_back": "退回重办", "act.return_visit": "回访", "act.close": "办结归档", "act.cancel": "撤销呼叫",
    "act.note": "添加备注", fReason: "理由", fTargetsAdd: "增派部门", fTarget1: "转派给", fSendBack: "退回的派单",
    fResolved: "问题是否解决", yes: "已解决", no: "未解决", fSatisfaction: "满意度 (1–5)", fComment: "回访意见",
    fNote: "备注", confirmClose: "确认将此呼叫办结归档？", okBtn: "确定", loadFail: "加载失败：{msg}",
    "ev.call.created": "受理呼叫", "ev.call.accepted": "审核通过", "ev.call.sent_back": "退回重办",
    "ev.call.visited": "回访", "ev.call.closed": "办结归档", "ev.call.cancelled": "撤销", "ev.call.noted": "备注",
    "ev.assignment.dispatched": "派单", "ev.assignment.acknowledged": "响应", "ev.assignment.arrived": "报到",
    "ev.assignment.reported": "办结上报", "ev.assignment.declined": "申请转派", "ev.assignment.transferred": "已转派",
    "ev.assignment.withdrawn": "撤回", "ev.assignment.accepted": "审核通过", "ev.assignment.reopened": "重办",
    "ev.assignment.escalated": "超时升级", system: "系统", satisfaction: "满意度 {n}", live: "实时",
    refusedTitle: "指令被拒绝", staleCursor: "已重新加载",
  },
  en: {
    brand: "Xianghu · Command centre", newCall: "New call (N)", searchPh: "Search number / place / matter (/)",
    fState: "State", fTarget: "Department", fCategory: "Category", allStates: "All states", allTargets: "All departments",
    allCategories: "All categories", needsAction: "Needs action", colPrio: "Priority", colCall: "Call", colPlace: "Place",
    colAge: "Age", colDepts: "Departments · deadlines", empty: "No calls match", count: "{n} open", presence: "Online",
    online: "{n} online", none: "nobody", units: "Township forces (N)", departments: "Departments (7)",
    createTitle: "New call (intake → dispatch)", fCategoryL: "Category", fPriority: "Priority", fAddress: "Place",
    fTitle: "Matter", fTitlePh: "Blank: the first line of the description", fDescription: "Description",
    fTargets: "Dispatch to (several = joint enforcement)", fSource: "Source", fReporter: "Reporter", fPhone: "Phone",
    formHint: "Enter submits · Esc closes", cancelBtn: "Cancel", submitCall: "Dispatch", created: "Created {number}",
    choose: "Choose", muteOn: "Sound: off", muteOff: "Sound: on", alarmTitle: "Escalation", seeCall: "Open",
    ackAlarm: "Seen", ackAll: "All seen", alarmText: "{number} {category} · {target} {kind} overdue (level {level})",
    info: "Details", asgs: "Assignments", timeline: "Timeline", actions: "Actions", reporter: "Reporter", source: "Source",
    createdAt: "Received", description: "Description", place: "Place", level: "level {n}", due: "Due",
    result: "Result", declineReason: "Decline reason", suggested: "Suggested",
    "act.dispatch": "Add department", "act.reroute": "Re-route", "act.withdraw": "Withdraw", "act.accept": "Accept",
    "act.send_back": "Send back", "act.return_visit": "Return visit", "act.close": "Close", "act.cancel": "Cancel call",
    "act.note": "Add note", fReason: "Reason", fTargetsAdd: "Departments to add", fTarget1: "Re-route to",
    fSendBack: "Assignments to send back", fResolved: "Resolved?", yes: "Resolved", no: "Not resolved",
    fSatisfaction: "Satisfaction (1–5)", fComment: "Comment", fNote: "Note", confirmClose: "Close this call?",
    okBtn: "OK", loadFail: "Could not load: {msg}",
    "ev.call.created": "Call received", "ev.call.accepted": "Accepted", "ev.call.sent_back": "Sent back",
    "ev.call.visited": "Return visit", "ev.call.closed": "Closed", "ev.call.cancelled": "Cancelled",
    "ev.call.noted": "Note", "ev.assignment.dispatched": "Dispatched", "ev.assignment.acknowledged": "Acknowledged",
    "ev.assignment.arrived": "On scene", "ev.assignment.reported": "Result reported",
    "ev.assignment.declined": "Declined", "ev.assignment.transferred": "Transferred",
    "ev.assignment.withdrawn": "Withdrawn", "ev.assignment.accepted": "Accepted", "ev.assignment.reopened": "Reopened",
    "ev.assignment.escalated": "Escalated", system: "system", satisfaction: "satisfaction {n}", live: "live",
    refusedTitle: "Command refused", staleCursor: "Reloaded",
  },
});

const OPEN_CALL_STATES = ["intake", "dispatched", "in_progress", "review", "accepted", "visited"];
const FINAL_CALL = new Set(["closed", "cancelled"]);
const CLOSED_ASG = new Set(["accepted", "transferred", "withdrawn"]);
const PRIO_RANK = { urgent: 0, normal: 1, low: 2 };
const NEXT_DEADLINE = { dispatched: "ack", acknowledged: "arrive", on_scene: "resolve" };
const ASG_TIME = {
  "assignment.acknowledged": "acknowledged_at", "assignment.arrived": "on_scene_at", "assignment.reported": "reported_at",
  "assignment.accepted": "accepted_at", "assignment.transferred": "closed_at", "assignment.withdrawn": "closed_at",
};
const CALL_ACTIONS = {
  dispatch: ["intake", "dispatched", "in_progress", "review"],
  accept: ["review"], send_back: ["review"], return_visit: ["accepted"], close: ["accepted", "visited"],
  cancel: OPEN_CALL_STATES, note: OPEN_CALL_STATES,
};

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

const S = {
  me: null, ref: null, idx: null, township: null,
  calls: new Map(), // open calls by id (REST doc shape, kept current by events)
  presence: {}, detail: null, detailSeqs: new Set(),
  loading: null, reloadAgain: false, buffer: [], fetching: new Map(),
  skew: 0, seen: 0, flash: new Set(),
  filters: { q: "", state: "", target: "", category: "" },
};
const conn = new Connection({ storageKey: "xianghu.operator" });
const alarm = new Alarm("xianghu.operator.mute");
window.xianghu = { conn, state: S, alarm };

const now = () => Date.now() + S.skew;

// -- REST ------------------------------------------------------------------------------------------

async function api(method, path, body) {
  const res = await fetch(path, {
    method, credentials: "same-origin",
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw { code: "unauthenticated", message: "login required", field: null };
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw { code: data.code || `http_${res.status}`, message: data.message || res.statusText, field: data.field ?? null };
  return data;
}

const CALL_CMDS = new Set(["dispatch", "accept", "send_back", "return_visit", "close", "cancel", "note"]);

function restPath(name, args) {
  if (name === "create_call") return ["/api/v1/calls", args];
  const rest = { ...args };
  if (CALL_CMDS.has(name)) { delete rest.call_id; return [`/api/v1/calls/${args.call_id}/${name}`, rest]; }
  delete rest.assignment_id;
  return [`/api/v1/assignments/${args.assignment_id}/${name}`, rest];
}

/** Run one command: over the live socket (outbox, re-sent after reconnects) or REST with the same id. */
async function run(name, args) {
  const commandId = uuid4();
  if (conn.status === "live") {
    try {
      return await conn.command(name, args, { commandId });
    } catch (err) {
      conn.dismiss(commandId); // this page shows the refusal itself, next to the field
      throw { ...err, field: err.field ? String(err.field).replace(/^args\./, "") : null };
    }
  }
  const [path, body] = restPath(name, args);
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const out = await api("POST", path, { command_id: commandId, ...body });
      const callId = out.call_id || args.call_id || S.detail?.id;
      if (callId) refreshCall(callId); // no live channel: fetch the result ourselves
      return out;
    } catch (err) {
      if (err && err.code) throw err; // an answer from the hub: do not retry
      lastErr = err;
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    }
  }
  throw { code: "network", message: t("network"), field: null, cause: lastErr };
}

// -- state: load, events -----------------------------------------------------------------------------

async function loadAll() {
  if (S.loading) { S.reloadAgain = true; return S.loading; }
  S.buffer = [];
  S.loading = (async () => {
    try {
      const data = await api("GET", "/api/v1/calls?open=true&limit=500");
      const fresh = new Map(data.calls.map((c) => [c.id, c]));
      for (const ev of S.buffer) applyToMap(fresh, ev);
      S.calls = fresh;
      render();
    } catch (err) {
      toast(t("loadFail", { msg: err.message || err }), "bad");
    } finally {
      S.loading = null;
      S.buffer = [];
    }
    if (S.reloadAgain) { S.reloadAgain = false; await loadAll(); }
  })();
  return S.loading;
}

async function refreshCall(id) {
  if (S.fetching.has(id)) return;
  S.fetching.set(id, []);
  try {
    const doc = await api("GET", `/api/v1/calls/${id}`);
    const queued = S.fetching.get(id) || [];
    const { timeline, ...call } = doc;
    for (const ev of queued) applyEvent(call, ev);
    if (FINAL_CALL.has(call.state)) S.calls.delete(id);
    else S.calls.set(id, call);
    if (S.detail && S.detail.id === id) setDetail(doc, queued);
  } catch (err) {
    if (err.code === "not_found") S.calls.delete(id);
  } finally {
    S.fetching.delete(id);
    render();
  }
}

/** Fold one event message into a call document (the REST shape). Returns false when it cannot. */
function applyEvent(call, ev) {
  if (ev.seq <= (call.last_seq || 0)) return true; // already in the document
  const at = new Date(ev.at).toISOString();
  const b = ev.body || {};
  call.state = ev.call_state;
  call.updated_at = at;
  call.last_seq = ev.seq;
  if (ev.assignment_id) {
    let a = call.assignments.find((x) => x.id === ev.assignment_id);
    if (ev.event_type === "assignment.dispatched") {
      if (!a) {
        a = { id: ev.assignment_id, call_id: call.id, target: b.target, levels: { ack: 0, arrive: 0, resolve: 0 },
              dispatched_at: at, ack_due: b.ack_due, arrive_due: b.arrive_due, resolve_due: b.resolve_due,
              transferred_from: b.transferred_from ?? null, decline_reason: null, suggested_target: null, result: null };
        call.assignments.push(a);
      }
    } else if (!a) {
      return false;
    }
    a.state = ev.assignment_state;
    a.updated_at = at;
    if (ASG_TIME[ev.event_type]) a[ASG_TIME[ev.event_type]] = at;
    if (ev.event_type === "assignment.escalated") a.levels = { ...a.levels, [b.deadline_kind]: b.level };
    if (ev.event_type === "assignment.reported") a.result = b.result;
    if (ev.event_type === "assignment.declined") { a.decline_reason = b.reason; a.suggested_target = b.suggested_target ?? null; }
    if (ev.event_type === "assignment.reopened") {
      a.reported_at = null;
      if (b.resolve_due) a.resolve_due = b.resolve_due;
      a.levels = { ...a.levels, resolve: 0 };
    }
  } else if (ev.event_type === "call.visited") {
    call.resolved = b.resolved; call.satisfaction = b.satisfaction; call.visit_comment = b.comment ?? null;
  } else if (ev.event_type === "call.cancelled") {
    call.cancel_reason = b.reason; call.closed_at = at;
  } else if (ev.event_type === "call.closed") {
    call.closed_at = at;
  }
  return true;
}

function callFromCreated(ev) {
  const b = ev.body || {};
  return { id: ev.call_id, township_id: ev.township_id, number: b.number, state: ev.call_state, source: b.source,
           category: b.category, title: b.title, description: b.description || "", address: b.address || "",
           priority: b.priority, reporter_name: b.reporter_name ?? null, reporter_phone: b.reporter_phone ?? null,
           lat: b.lat ?? null, lon: b.lon ?? null, created_at: new Date(ev.at).toISOString(),
           updated_at: new Date(ev.at).toISOString(), assignments: [], last_seq: ev.seq };
}

function applyToMap(map, ev) {
  let call = map.get(ev.call_id);
  if (!call && ev.event_type === "call.created") {
    call = callFromCreated(ev);
    map.set(call.id, call);
    S.flash.add(call.id);
    return true;
  }
  if (!call) return false;
  if (!applyEvent(call, ev)) return false;
  if (FINAL_CALL.has(call.state)) map.delete(call.id);
  return true;
}

function onEvent(ev) {
  if (ev.at > now()) S.skew += ev.at - now(); // the hub's clock is the one that counts
  S.seen += 1;
  if (S.loading) S.buffer.push(ev);
  if (S.fetching.has(ev.call_id)) {
    S.fetching.get(ev.call_id).push(ev);
  } else if (!applyToMap(S.calls, ev) && !FINAL_CALL.has(ev.call_state)) {
    refreshCall(ev.call_id); // a call we do not hold (or an assignment we missed): ask the hub
  }
  if (S.detail && S.detail.id === ev.call_id) detailEvent(ev);
  // a rung recorded after the department already responded (late_record) is history, not an alarm
  if (ev.event_type === "assignment.escalated" && !ev.body?.late_record) raiseAlarm(ev);
  scheduleRender();
}

// -- board ------------------------------------------------------------------------------------------

function openAssignments(call) {
  return (call.assignments || []).filter((a) => !CLOSED_ASG.has(a.state));
}

function nextDue(a) {
  const kind = NEXT_DEADLINE[a.state];
  if (!kind) return null;
  const start = kind === "ack" ? a.dispatched_at : kind === "arrive" ? (a.acknowledged_at || a.dispatched_at) : (a.on_scene_at || a.dispatched_at);
  return { kind, due: a[`${kind}_due`], start };
}

function needsAction(call) {
  return call.state === "review" || call.state === "accepted" || call.state === "visited" || call.state === "intake"
    || (call.assignments || []).some((a) => a.state === "declined");
}

function urgency(call) {
  let soonest = Infinity;
  for (const a of openAssignments(call)) {
    const d = nextDue(a);
    if (d) soonest = Math.min(soonest, toDate(d.due).getTime() - now());
  }
  const tier = soonest <= 0 ? 0 : needsAction(call) ? 1 : Number.isFinite(soonest) ? 2 : 3;
  return [tier, soonest, PRIO_RANK[call.priority] ?? 1, -toDate(call.created_at).getTime()];
}

function compareUrgency(a, b) {
  const ua = urgency(a), ub = urgency(b);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return ua[i] < ub[i] ? -1 : 1;
  return 0;
}

function matches(call) {
  const f = S.filters;
  if (f.state === "_action" && !needsAction(call)) return false;
  if (f.state && f.state !== "_action" && call.state !== f.state) return false;
  if (f.category && call.category !== f.category) return false;
  if (f.target && !openAssignments(call).some((a) => a.target === f.target)) return false;
  if (f.q) {
    const hay = [call.number, call.title, call.address, call.description, categoryName(S.idx, call.category),
                 call.reporter_name, call.reporter_phone, ...(call.assignments || []).map((a) => targetName(S.idx, a.target))]
      .join(" ").toLowerCase();
    if (!f.q.toLowerCase().split(/\s+/).every((w) => hay.includes(w))) return false;
  }
  return true;
}

function chip(a) {
  const d = nextDue(a);
  const lvl = d ? (a.levels?.[d.kind] || 0) : 0;
  const timer = d ? `<time data-due="${esc(d.due)}" data-start="${esc(d.start)}"></time>` : "";
  return `<span class="chip st-${esc(a.state)}" data-asg="${esc(a.id)}"${d ? ` data-kind="${d.kind}"` : ""}>`
    + `<b>${esc(targetName(S.idx, a.target))}</b><span class="st">${esc(t("asg." + a.state))}</span>`
    + `${timer}${lvl ? `<span class="lvl" title="${esc(t("level", { n: lvl }))}">↑${lvl}</span>` : ""}</span>`;
}

function rowHTML(call) {
  const asgs = openAssignments(call);
  const flash = S.flash.has(call.id) ? " flash" : "";
  return `<div class="row p-${esc(call.priority)} cs-${esc(call.state)}${flash}" role="row" tabindex="0" data-id="${esc(call.id)}">`
    + `<span class="prio" role="cell"><b class="badge p-${esc(call.priority)}">${esc(t("prio." + call.priority))}</b></span>`
    + `<span class="call" role="cell"><span class="cat">${esc(categoryName(S.idx, call.category))}</span>`
    + `<span class="title">${esc(call.title)}</span>`
    + `<small class="num">${esc(call.number)} · <span class="cstate">${esc(t("call." + call.state))}</span></small></span>`
    + `<span class="place" role="cell">${esc(call.address || "—")}</span>`
    + `<span class="age" role="cell" data-since="${esc(call.created_at)}"></span>`
    + `<span class="depts" role="cell">${asgs.map(chip).join("") || `<span class="muted">—</span>`}</span></div>`;
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

function render() {
  const list = [...S.calls.values()].filter((c) => OPEN_CALL_STATES.includes(c.state));
  const shown = list.filter(matches).sort(compareUrgency);
  const rows = $("#rows");
  const focusedId = document.activeElement?.closest?.(".row")?.dataset.id;
  rows.innerHTML = shown.map(rowHTML).join("");
  S.flash.clear();
  $("#empty").hidden = shown.length > 0;
  $("#count").textContent = t("count", { n: list.length }) + (shown.length !== list.length ? ` · ${shown.length}` : "");
  if (focusedId) rows.querySelector(`[data-id="${CSS.escape(focusedId)}"]`)?.focus();
  tick();
  if (S.detail) renderDetail();
}

/** Once a second: ages and countdowns, without re-rendering rows. */
function tick() {
  const n = now();
  for (const el of document.querySelectorAll("[data-since]")) el.textContent = fmtAge(el.dataset.since, n);
  for (const el of document.querySelectorAll("time[data-due]")) {
    const c = countdown(el.dataset.due, n, { start: el.dataset.start || null });
    el.textContent = c.text;
    el.className = "cd-" + c.level;
    const chipEl = el.closest(".chip, .asg");
    if (chipEl) chipEl.dataset.level = c.level;
  }
  for (const row of document.querySelectorAll("#rows .row")) {
    row.classList.toggle("breach", !!row.querySelector('.chip[data-level="due"]'));
  }
}

// -- presence -----------------------------------------------------------------------------------------

function renderPresence() {
  const ul = $("#presence");
  if (!S.ref || !S.township) return;
  const online = S.presence[S.township.id] || {};
  const item = (code, name) => {
    const n = online[code] || 0;
    return `<li class="${n ? "on" : "off"}" data-target="${esc(code)}"><i></i><span class="nm">${esc(name)}</span>`
      + `<span class="n">${n ? esc(t("online", { n })) : esc(t("none"))}</span></li>`;
  };
  const depts = S.ref.departments.filter((d) => S.township.departments.includes(d.code));
  ul.innerHTML = `<li class="grp">${esc(t("departments"))}</li>` + depts.map((d) => item(d.code, refName(d))).join("")
    + `<li class="grp">${esc(t("units"))}</li>` + (S.township.units || []).map((u) => item(`unit:${u.id}`, refName(u))).join("");
}

// -- alarms (escalations) -----------------------------------------------------------------------------

const ALARM_KEY = "xianghu.operator.alarms";
let alarms = JSON.parse(localStorage.getItem(ALARM_KEY) || "[]");

function saveAlarms() { localStorage.setItem(ALARM_KEY, JSON.stringify(alarms.slice(-50))); }

function raiseAlarm(ev) {
  if (alarms.some((x) => x.seq === ev.seq && x.township_id === ev.township_id)) return;
  const call = S.calls.get(ev.call_id) || (S.detail?.id === ev.call_id ? S.detail : null);
  const a = call?.assignments?.find((x) => x.id === ev.assignment_id);
  alarms.push({ seq: ev.seq, township_id: ev.township_id, call_id: ev.call_id, at: ev.at,
                number: call?.number || "", category: call?.category || "", target: a?.target || "",
                kind: ev.body?.deadline_kind, level: ev.body?.level });
  saveAlarms();
  renderAlarms();
  alarm.ring();
}

function renderAlarms() {
  const box = $("#alarms");
  box.hidden = alarms.length === 0;
  box.innerHTML = alarms.map((x, i) => `<div class="alarm" role="alert" data-i="${i}"><b>⚠ ${esc(t("alarmTitle"))}</b>`
    + `<span>${esc(t("alarmText", { number: x.number, category: categoryName(S.idx, x.category), target: targetName(S.idx, x.target),
                                    kind: t("dl." + x.kind), level: x.level }))}</span>`
    + `<time>${esc(fmtWhen(x.at, now()))}</time>`
    + `<button type="button" class="ghost" data-open="${esc(x.call_id)}">${esc(t("seeCall"))}</button>`
    + `<button type="button" class="ack" data-ack="${i}">${esc(t("ackAlarm"))}</button></div>`).join("")
    + (alarms.length > 1 ? `<div class="alarm-all"><button type="button" class="ack" data-ack="all">${esc(t("ackAll"))}</button></div>` : "");
  if (alarms.length === 0) alarm.stop();
}

$("#alarms").addEventListener("click", (e) => {
  const open = e.target.closest("[data-open]");
  if (open) openDetail(open.dataset.open);
  const ack = e.target.closest("[data-ack]");
  if (!ack) return;
  if (ack.dataset.ack === "all") alarms = [];
  else alarms.splice(Number(ack.dataset.ack), 1);
  saveAlarms();
  renderAlarms();
});

function renderMute() {
  const b = $("#mute");
  b.textContent = alarm.muted ? t("muteOn") : t("muteOff");
  b.setAttribute("aria-pressed", String(alarm.muted));
}
$("#mute").addEventListener("click", () => { alarm.setMuted(!alarm.muted); renderMute(); });

// -- connection indicator, refused commands -----------------------------------------------------------

function renderConn() {
  const el = $("#conn");
  el.dataset.status = conn.status;
  el.querySelector("span").textContent = t("conn." + conn.status);
  const p = conn.pending();
  const waiting = p.filter((c) => c.state === "pending").length;
  const btn = $("#pending");
  btn.hidden = waiting === 0;
  btn.textContent = t("pending.count", { n: waiting });
  const refused = p.filter((c) => c.state === "refused");
  $("#refused").innerHTML = refused.map((c) => `<div class="refusal"><b>${esc(t("refusedTitle"))}</b> `
    + `<span>${esc(t("act." + c.name) !== "act." + c.name ? t("act." + c.name) : c.name)}: ${esc(c.error?.message || c.error?.code || "")}</span>`
    + `<button type="button" class="ghost" data-dismiss="${esc(c.command_id)}">${esc(t("dismiss"))}</button></div>`).join("");
}
$("#refused").addEventListener("click", (e) => {
  const b = e.target.closest("[data-dismiss]");
  if (b) { conn.dismiss(b.dataset.dismiss); renderConn(); }
});

function toast(text, kind = "ok") {
  const el = document.createElement("div");
  el.className = `toast ${kind}`;
  el.setAttribute("role", "status");
  el.textContent = text;
  document.body.append(el);
  setTimeout(() => el.remove(), 4000);
}

// -- create form --------------------------------------------------------------------------------------

function fillCreateForm() {
  const cat = $("#c-category");
  cat.innerHTML = `<option value="">${esc(t("choose"))}</option>`
    + S.ref.categories.map((c) => `<option value="${esc(c.code)}">${esc(refName(c))}</option>`).join("");
  $("#c-source").innerHTML = S.ref.sources.map((s) => `<option value="${esc(s)}">${esc(t("src." + s))}</option>`).join("");
  const depts = S.ref.departments.filter((d) => S.township.departments.includes(d.code));
  const targets = [...depts.map((d) => [d.code, refName(d)]), ...(S.township.units || []).map((u) => [`unit:${u.id}`, refName(u)])];
  $("#c-targets").innerHTML = targets.map(([code, name]) =>
    `<label class="tchip"><input type="checkbox" name="targets" value="${esc(code)}"><span>${esc(name)}</span></label>`).join("");
}

$("#c-category").addEventListener("change", (e) => {
  const c = S.idx.categories.get(e.target.value);
  const route = new Set(c?.route || []);
  for (const box of document.querySelectorAll('#c-targets input[name="targets"]')) box.checked = route.has(box.value);
});

function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const general = form.querySelector(".error");
  if (general) general.textContent = "";
}

function showError(form, err) {
  const field = String(err.field || "").replace(/^args\./, "").split(/[.[]/)[0];
  const slot = field && form.querySelector(`.field-error[data-for="${CSS.escape(field)}"]`);
  let msg = err.message || err.code || String(err);
  if (slot) {
    msg = msg.replace(new RegExp(`^(args\\.)?${field}[^:]*:\\s*`), ""); // the field is named by its place
    slot.textContent = msg;
    const input = form.querySelector(`[name="${CSS.escape(field)}"]`);
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  } else {
    form.querySelector(".error").textContent = msg;
  }
}

function openCreate() {
  const dlg = $("#create");
  if (dlg.open) return;
  clearErrors($("#create-form"));
  dlg.showModal();
  $("#c-category").focus();
}

$("#new-call").addEventListener("click", openCreate);

$("#create-form").addEventListener("keydown", (e) => {
  // Enter submits from any field; in the description Ctrl/⌘+Enter does (Enter is a new line there).
  if (e.key !== "Enter" || e.isComposing) return;
  if (e.target.tagName === "TEXTAREA" && !(e.ctrlKey || e.metaKey)) return;
  if (e.target.tagName === "BUTTON") return;
  e.preventDefault();
  $("#create-form").requestSubmit();
});

$("#create-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target;
  clearErrors(form);
  const fd = new FormData(form);
  const category = fd.get("category");
  if (!category) { showError(form, { field: "category", message: t("required") }); return; }
  const address = (fd.get("address") || "").trim();
  let title = (fd.get("title") || "").trim();
  const description = (fd.get("description") || "").trim();
  if (!title) {
    // The matter in a line: the start of the description, else the category and place.
    const line = description.split(/[\n。！!？?]/)[0].trim();
    title = line ? line.slice(0, 60) : [categoryName(S.idx, category), address].filter(Boolean).join(" · ");
  }
  const args = {
    source: fd.get("source"), category, title, description, address,
    priority: fd.get("priority") || "normal", targets: fd.getAll("targets"),
  };
  const reporter = (fd.get("reporter_name") || "").trim();
  const phone = (fd.get("reporter_phone") || "").trim();
  if (reporter) args.reporter_name = reporter;
  if (phone) args.reporter_phone = phone;
  const btn = $("#create-submit");
  btn.disabled = true;
  try {
    const out = await run("create_call", args);
    S.flash.add(out.call_id);
    form.reset();
    $("#create").close();
    toast(t("created", { number: out.number || "" }));
    if (out.call_id && !S.calls.has(out.call_id)) refreshCall(out.call_id);
  } catch (err) {
    showError(form, err);
  } finally {
    btn.disabled = false;
  }
});

for (const b of document.querySelectorAll("dialog [data-close]")) b.addEventListener("click", () => b.closest("dialog").close());

// -- detail: one call -----------------------------------------------------------------------------------

async function openDetail(id) {
  const dlg = $("#detail");
  S.detail = S.calls.get(id) ? { ...structuredClone(S.calls.get(id)), timeline: null } : { id, assignments: [], timeline: null };
  S.detailSeqs = new Set();
  S.detailQueue = [];
  renderDetail();
  if (!dlg.open) dlg.showModal();
  try {
    const doc = await api("GET", `/api/v1/calls/${id}`);
    if (S.detail?.id === id) setDetail(doc, S.detailQueue || []);
  } catch (err) {
    $("#detail-body").innerHTML = `<p class="error">${esc(t("loadFail", { msg: err.message }))}</p>`;
  }
}

function setDetail(doc, queued) {
  S.detail = structuredClone(doc);
  S.detailSeqs = new Set(doc.timeline.map((e) => e.seq));
  S.detailQueue = [];
  for (const ev of queued) detailEvent(ev);
  renderDetail();
}

function detailEvent(ev) {
  const d = S.detail;
  if (!d.timeline) { (S.detailQueue ||= []).push(ev); return; } // loading: applied once the timeline is here
  if (S.detailSeqs.has(ev.seq)) return;
  applyEvent(d, ev);
  S.detailSeqs.add(ev.seq);
  d.timeline.push({ seq: ev.seq, type: ev.event_type, assignment_id: ev.assignment_id, actor: ev.actor,
                    at: new Date(ev.at).toISOString(), body: ev.body || {}, call_state: ev.call_state,
                    assignment_state: ev.assignment_state });
  d.timeline.sort((x, y) => x.seq - y.seq);
}

$("#detail").addEventListener("close", () => { S.detail = null; });

function actorText(actor) {
  if (!actor) return "";
  return actor.role === "system" ? t("system") : actor.name || "";
}

function eventDetail(e, call) {
  const b = e.body || {};
  const a = call.assignments.find((x) => x.id === e.assignment_id);
  const who = a ? targetName(S.idx, a.target) : b.target ? targetName(S.idx, b.target) : "";
  const bits = [];
  if (who) bits.push(`<b>${esc(who)}</b>`);
  if (e.type === "assignment.escalated") bits.push(esc(`${t("dl." + b.deadline_kind)} · ${t("level", { n: b.level })} · ${t("due")} ${fmtWhen(b.deadline, now())}`));
  if (e.type === "assignment.dispatched") bits.push(esc(`${t("dl.ack")} ${fmtWhen(b.ack_due, now())} · ${t("dl.arrive")} ${fmtWhen(b.arrive_due, now())} · ${t("dl.resolve")} ${fmtWhen(b.resolve_due, now())}`));
  for (const k of ["reason", "result", "text", "comment"]) if (b[k]) bits.push(`<q>${esc(b[k])}</q>`);
  if (b.suggested_target) bits.push(esc(`${t("suggested")}: ${targetName(S.idx, b.suggested_target)}`));
  if (b.satisfaction) bits.push(esc(`${b.resolved ? t("yes") : t("no")} · ${t("satisfaction", { n: b.satisfaction })}`));
  return bits.join(" ");
}

function asgHTML(a, call) {
  const d = nextDue(a);
  const open = !CLOSED_ASG.has(a.state);
  const deadlines = ["ack", "arrive", "resolve"].map((k) => {
    const active = d && d.kind === k;
    const lvl = a.levels?.[k] || 0;
    return `<span class="dl${active ? " active" : ""}">${esc(t("dl." + k))} ${esc(fmtWhen(a[k + "_due"], now()))}`
      + `${active ? ` <time data-due="${esc(a[k + "_due"])}" data-start="${esc(d.start)}"></time>` : ""}`
      + `${lvl ? ` <span class="lvl">↑${lvl}</span>` : ""}</span>`;
  }).join("");
  const acts = [];
  if (["dispatched", "declined"].includes(a.state) && !FINAL_CALL.has(call.state)) acts.push(["reroute", a.id]);
  if (["dispatched", "acknowledged", "on_scene", "declined"].includes(a.state) && !FINAL_CALL.has(call.state)) acts.push(["withdraw", a.id]);
  return `<li class="asg st-${esc(a.state)}" data-asg="${esc(a.id)}"><div class="asg-h"><b>${esc(targetName(S.idx, a.target))}</b>`
    + `<span class="pill st-${esc(a.state)}">${esc(t("asg." + a.state))}</span></div>`
    + (open ? `<div class="dls">${deadlines}</div>` : "")
    + (a.decline_reason && a.state === "declined" ? `<div class="note">${esc(t("declineReason"))}: ${esc(a.decline_reason)}${a.suggested_target ? ` · ${esc(t("suggested"))}: ${esc(targetName(S.idx, a.suggested_target))}` : ""}</div>` : "")
    + (a.result ? `<div class="note">${esc(t("result"))}: ${esc(a.result)}</div>` : "")
    + (acts.length ? `<div class="acts">${acts.map(([k, id]) => `<button type="button" class="small" data-act="${k}" data-asg="${esc(id)}">${esc(t("act." + k))}</button>`).join("")}</div>` : "")
    + `</li>`;
}

function renderDetail() {
  const d = S.detail;
  if (!d) return;
  $("#detail-h").innerHTML = d.number ? `<span class="badge p-${esc(d.priority)}">${esc(t("prio." + d.priority))}</span> ${esc(d.number)} `
    + `<span class="pill cs">${esc(t("call." + d.state))}</span>` : "…";
  if (!d.category) { $("#detail-body").innerHTML = ""; return; }
  const callActs = Object.entries(CALL_ACTIONS).filter(([, states]) => states.includes(d.state)).map(([k]) => k);
  const tl = d.timeline
    ? d.timeline.map((e) => `<li class="ev ev-${esc(e.type.replace(".", "-"))}" data-seq="${e.seq}"><time>${esc(fmtDateTime(e.at, { seconds: true }))}</time>`
        + `<span class="what">${esc(t("ev." + e.type))}</span><span class="who">${esc(actorText(e.actor))}</span>`
        + `<span class="det">${eventDetail(e, d)}</span></li>`).join("")
    : `<li class="muted">…</li>`;
  $("#detail-body").innerHTML = `<section class="info"><h3>${esc(categoryName(S.idx, d.category))} · ${esc(d.title)}</h3><dl>`
    + `<dt>${esc(t("place"))}</dt><dd>${esc(d.address || "—")}</dd>`
    + `<dt>${esc(t("source"))}</dt><dd>${esc(t("src." + d.source))}</dd>`
    + `<dt>${esc(t("reporter"))}</dt><dd>${esc([d.reporter_name, d.reporter_phone].filter(Boolean).join(" · ") || "—")}</dd>`
    + `<dt>${esc(t("createdAt"))}</dt><dd>${esc(fmtDateTime(d.created_at))}</dd>`
    + (d.description ? `<dt>${esc(t("description"))}</dt><dd>${esc(d.description)}</dd>` : "")
    + `</dl></section>`
    + (callActs.length ? `<section class="call-acts">${callActs.map((k) => `<button type="button" class="${["accept", "close"].includes(k) ? "primary" : k === "cancel" ? "danger" : ""}" data-act="${k}">${esc(t("act." + k))}</button>`).join("")}</section>` : "")
    + `<section><h3>${esc(t("asgs"))}</h3><ul class="asgs">${d.assignments.map((a) => asgHTML(a, d)).join("")}</ul></section>`
    + `<section><h3>${esc(t("timeline"))}</h3><ol class="timeline" id="timeline">${tl}</ol></section>`;
  tick();
}

$("#detail-body").addEventListener("click", (e) => {
  const b = e.target.closest("[data-act]");
  if (b) openAction(b.dataset.act, b.dataset.asg || null);
});

// -- one action (a small form) ------------------------------------------------------------------------

function targetOptions(exclude) {
  const depts = S.ref.departments.filter((d) => S.township.departments.includes(d.code)).map((d) => [d.code, refName(d)]);
  const units = (S.township.units || []).map((u) => [`unit:${u.id}`, refName(u)]);
  return [...depts, ...units].filter(([c]) => !exclude.has(c));
}

function openAction(kind, asgId) {
  const d = S.detail;
  const busy = new Set(d.assignments.filter((a) => !CLOSED_ASG.has(a.state)).map((a) => a.target));
  const a = asgId ? d.assignments.find((x) => x.id === asgId) : null;
  const fields = {
    dispatch: `<fieldset class="fld"><legend>${esc(t("fTargetsAdd"))}</legend>${targetOptions(busy).map(([c, n]) => `<label class="tchip"><input type="checkbox" name="targets" value="${esc(c)}"><span>${esc(n)}</span></label>`).join("")}<em class="field-error" data-for="targets"></em></fieldset>`,
    reroute: `<label class="fld"><span>${esc(t("fTarget1"))}</span><select name="target" required>${targetOptions(busy).map(([c, n]) => `<option value="${esc(c)}"${a?.suggested_target === c ? " selected" : ""}>${esc(n)}</option>`).join("")}</select><em class="field-error" data-for="target"></em></label>`,
    withdraw: reasonField(), cancel: reasonField(),
    send_back: `<fieldset class="fld"><legend>${esc(t("fSendBack"))}</legend>${d.assignments.filter((x) => x.state === "reported").map((x) => `<label class="tchip"><input type="checkbox" name="assignment_ids" value="${esc(x.id)}" checked><span>${esc(targetName(S.idx, x.target))}</span></label>`).join("")}<em class="field-error" data-for="assignment_ids"></em></fieldset>${reasonField()}`,
    return_visit: `<fieldset class="fld"><legend>${esc(t("fResolved"))}</legend><label><input type="radio" name="resolved" value="true" checked> ${esc(t("yes"))}</label> <label><input type="radio" name="resolved" value="false"> ${esc(t("no"))}</label><em class="field-error" data-for="resolved"></em></fieldset>`
      + `<fieldset class="fld stars"><legend>${esc(t("fSatisfaction"))}</legend>${[1, 2, 3, 4, 5].map((n) => `<label><input type="radio" name="satisfaction" value="${n}"${n === 5 ? " checked" : ""}> ${n}</label>`).join(" ")}<em class="field-error" data-for="satisfaction"></em></fieldset>`
      + `<label class="fld"><span>${esc(t("fComment"))}</span><textarea name="comment" rows="2" maxlength="2000"></textarea><em class="field-error" data-for="comment"></em></label>`,
    note: `<label class="fld"><span>${esc(t("fNote"))}</span><textarea name="text" rows="3" maxlength="2000" required></textarea><em class="field-error" data-for="text"></em></label>`,
    accept: "", close: `<p>${esc(t("confirmClose"))}</p>`,
  }[kind];
  const form = $("#action-form");
  form.dataset.kind = kind;
  form.dataset.asg = asgId || "";
  $("#action-h").textContent = t("act." + kind) + (a ? ` · ${targetName(S.idx, a.target)}` : "");
  $("#action-fields").innerHTML = fields;
  $("#action-submit").textContent = t("act." + kind);
  clearErrors(form);
  $("#action").showModal();
  (form.querySelector("#action-fields input, #action-fields select, #action-fields textarea") || $("#action-submit")).focus();
}

function reasonField() {
  return `<label class="fld"><span>${esc(t("fReason"))}</span><textarea name="reason" rows="2" maxlength="500" required></textarea><em class="field-error" data-for="reason"></em></label>`;
}

$("#action-form").addEventListener("keydown", (e) => {
  if (e.key !== "Enter" || e.isComposing || e.target.tagName === "BUTTON") return;
  if (e.target.tagName === "TEXTAREA" && !(e.ctrlKey || e.metaKey)) return;
  e.preventDefault();
  $("#action-form").requestSubmit();
});

$("#action-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target;
  const kind = form.dataset.kind;
  const fd = new FormData(form);
  clearErrors(form);
  const args = form.dataset.asg ? { assignment_id: form.dataset.asg } : { call_id: S.detail.id };
  if (kind === "dispatch") args.targets = fd.getAll("targets");
  if (kind === "reroute") args.target = fd.get("target");
  if (["withdraw", "cancel", "send_back"].includes(kind)) args.reason = (fd.get("reason") || "").trim();
  if (kind === "send_back") args.assignment_ids = fd.getAll("assignment_ids");
  if (kind === "return_visit") {
    args.resolved = fd.get("resolved") === "true";
    args.satisfaction = Number(fd.get("satisfaction"));
    const c = (fd.get("comment") || "").trim();
    if (c) args.comment = c;
  }
  if (kind === "note") args.text = (fd.get("text") || "").trim();
  if ("reason" in args && !args.reason) { showError(form, { field: "reason", message: t("required") }); return; }
  if (kind === "note" && !args.text) { showError(form, { field: "text", message: t("required") }); return; }
  const btn = $("#action-submit");
  btn.disabled = true;
  try {
    await run(kind, args);
    $("#action").close();
  } catch (err) {
    showError(form, err);
  } finally {
    btn.disabled = false;
  }
});

// -- board interaction, filters, keyboard ------------------------------------------------------------

$("#rows").addEventListener("click", (e) => {
  const row = e.target.closest(".row");
  if (row) openDetail(row.dataset.id);
});
$("#rows").addEventListener("keydown", (e) => {
  const row = e.target.closest(".row");
  if (!row) return;
  if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openDetail(row.dataset.id); }
  if (e.key === "ArrowDown") { e.preventDefault(); row.nextElementSibling?.focus(); }
  if (e.key === "ArrowUp") { e.preventDefault(); row.previousElementSibling?.focus(); }
});

function fillFilters() {
  $("#f-state").innerHTML = `<option value="">${esc(t("allStates"))}</option><option value="_action">${esc(t("needsAction"))}</option>`
    + OPEN_CALL_STATES.map((s) => `<option value="${s}">${esc(t("call." + s))}</option>`).join("");
  $("#f-target").innerHTML = `<option value="">${esc(t("allTargets"))}</option>`
    + targetOptions(new Set()).map(([c, n]) => `<option value="${esc(c)}">${esc(n)}</option>`).join("");
  $("#f-category").innerHTML = `<option value="">${esc(t("allCategories"))}</option>`
    + S.ref.categories.map((c) => `<option value="${esc(c.code)}">${esc(refName(c))}</option>`).join("");
}

for (const [id, key] of [["#f-state", "state"], ["#f-target", "target"], ["#f-category", "category"]]) {
  $(id).addEventListener("change", (e) => { S.filters[key] = e.target.value; render(); });
}
$("#search").addEventListener("input", (e) => { S.filters.q = e.target.value.trim(); render(); });

document.addEventListener("keydown", (e) => {
  if (e.target.closest("input, textarea, select, dialog[open]") || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "n" || e.key === "N" || e.key === "F2") { e.preventDefault(); openCreate(); }
  if (e.key === "/") { e.preventDefault(); $("#search").focus(); }
});
document.addEventListener("pointerdown", () => alarm.unlock(), { once: false, capture: true });
document.addEventListener("keydown", () => alarm.unlock(), { capture: true });

$("#lang").addEventListener("click", () => setLang(lang() === "en" ? "zh-CN" : "en"));
$("#logout").addEventListener("click", async () => {
  conn.stop();
  await fetch("/api/v1/logout", { method: "POST" }).catch(() => {});
  location.href = "/login";
});

// -- start -------------------------------------------------------------------------------------------------

async function main() {
  applyI18n();
  renderMute();
  renderConn();
  renderAlarms();
  [S.me, S.ref] = await Promise.all([api("GET", "/api/v1/me"), api("GET", "/api/v1/reference")]);
  S.idx = indexReference(S.ref);
  for (const tw of S.ref.townships) for (const u of tw.units || []) S.idx.targets.set(`unit:${u.id}`, { ...u, code: `unit:${u.id}` });
  S.township = S.ref.townships.find((x) => x.id === S.me.township_id) || S.ref.townships[0];
  $("#township").textContent = refName(S.township);
  $("#who").textContent = S.me.name;
  fillFilters();
  fillCreateForm();
  renderPresence();
  renderAlarms();

  conn.addEventListener("status", renderConn);
  conn.addEventListener("pending", renderConn);
  conn.addEventListener("welcome", (e) => { S.skew = e.detail.server_time - Date.now(); tick(); });
  conn.addEventListener("event", (e) => onEvent(e.detail));
  conn.addEventListener("resync", () => loadAll());
  conn.addEventListener("presence", (e) => { S.presence[e.detail.township_id] = e.detail.online || {}; renderPresence(); });
  await loadAll();
  conn.start();
  setInterval(tick, 1000);
  setInterval(scheduleRender, 15000); // re-sort as deadlines approach
}

main().catch((err) => toast(t("loadFail", { msg: err.message || err.code || err }), "bad"));
