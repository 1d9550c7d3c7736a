// Liaison mobile page (联络员): the department's assignments in its township, one-tap actions that queue
// on the phone while offline (console/shared/conn.js keeps the outbox), alerts on a new call.
//
// Authentication: the console's session cookie (HttpOnly, SameSite=Strict) set by /login. The page never
// holds a token in script-readable storage, the WebSocket handshake and every REST call carry the cookie
// on the same origin, and POST /api/v1/logout revokes it server-side.
import { applyI18n, t, lang, setLang } from "/shared/i18n.js";
import { Connection } from "/shared/conn.js";
import { h } from "/shared/dom.js";

const L = {
  "zh-CN": {
    "li.title": "乡呼 · 联络员", "li.menu": "菜单", "li.alertsTest": "测试来电提醒", "li.logout": "退出登录",
    "li.enableAlerts": "轻触开启来电提醒（声音 · 振动 · 通知）", "li.gotIt": "知道了",
    "li.active": "我的派单", "li.noneActive": "暂无待办派单", "li.done": "已结束（{n}）",
    "li.back": "‹ 返回", "li.refresh": "刷新",
    "li.reportTitle": "办结反馈", "li.reportLabel": "处置结果", "li.reportSend": "提交办结", "li.cancel": "取消",
    "li.declineTitle": "申请转派", "li.declineReason": "转派理由", "li.declineSuggest": "建议转给",
    "li.declineNone": "不指定", "li.declineSend": "提交转派", "li.required": "请填写",
    "li.status.live": "在线", "li.status.connecting": "连接中", "li.status.offline": "离线",
    "li.offlineBanner": "离线：操作保存在手机上，网络恢复后自动发送",
    "li.pendingTitle": "待发送 {n} 项", "li.refusedTitle": "被拒绝 {n} 项",
    "li.pendingSending": "发送中…", "li.pendingQueued": "等待网络", "li.refused": "被拒绝：{reason}",
    "li.dismiss": "知道了", "li.queuedChip": "待发送",
    "li.act.acknowledge": "响应", "li.act.arrive": "报到", "li.act.report_result": "办结", "li.act.decline": "转",
    "li.actLong.acknowledge": "响应", "li.actLong.arrive": "到场报到", "li.actLong.report_result": "办结反馈",
    "li.actLong.decline": "申请转派",
    "li.detail": "详情 ›",
    "li.due.ack": "响应时限", "li.due.arrive": "报到时限", "li.due.resolve": "办结时限",
    "li.left": "剩余", "li.over": "已超时",
    "li.newCall": "新派单：{title}", "li.notifTitle": "乡呼 · 新派单（{prio}）", "li.rings": "请尽快响应",
    "li.locating": "正在获取位置…", "li.withLoc": "已附带位置报到", "li.noLoc": "未获取位置，已直接报到",
    "li.queuedToast": "已保存，网络恢复后自动发送", "li.refusedToast": "{action}被拒绝：{reason}",
    "li.sentToast": "{action}已送达指挥中心",
    "li.logoutPending": "还有 {n} 项操作未发送，退出后将丢失。确定退出？",
    "li.cachedNote": "离线：显示的是上次保存的内容", "li.notFound": "找不到该诉求（可能已转派给其他部门）",
    "li.loadFailed": "加载失败，请稍后重试", "li.notLiaison": "此页面供联络员使用",
    "li.f.number": "编号", "li.f.category": "类别", "li.f.priority": "紧急程度", "li.f.address": "地址",
    "li.f.description": "描述", "li.f.source": "来源", "li.f.reporter": "反映人", "li.f.callState": "诉求状态",
    "li.f.myState": "本部门", "li.f.dispatched": "登记时间", "li.f.ackAt": "响应于", "li.f.arriveAt": "到场于", "li.f.reportAt": "办结于", "li.f.result": "处置结果",
    "li.f.decline": "转派理由", "li.f.timeline": "处置记录", "li.f.deadlines": "时限",
    "li.prio.urgent": "紧急", "li.prio.normal": "一般", "li.prio.low": "较低",
    "li.st.dispatched": "待响应", "li.st.acknowledged": "已响应·待报到", "li.st.on_scene": "已到场·处置中",
    "li.st.reported": "已办结·待审核", "li.st.accepted": "已通过审核", "li.st.declined": "已申请转派·待指挥中心处理",
    "li.st.transferred": "已转派", "li.st.withdrawn": "已撤回",
    "li.cs.intake": "待派单", "li.cs.dispatched": "已派单", "li.cs.in_progress": "处置中", "li.cs.review": "待审核",
    "li.cs.accepted": "已审核", "li.cs.visited": "已回访", "li.cs.closed": "已归档", "li.cs.cancelled": "已撤销",
    "li.src.hotline_12345": "12345热线", "li.src.grid": "网格员上报", "li.src.resident_app": "嘟来办",
    "li.src.mini_program": "汶诉即办", "li.src.walk_in": "来访", "li.src.patrol": "巡查发现",
    "li.ev.call.created": "登记诉求", "li.ev.call.accepted": "审核通过", "li.ev.call.sent_back": "退回重办",
    "li.ev.call.visited": "回访", "li.ev.call.closed": "归档", "li.ev.call.cancelled": "撤销",
    "li.ev.call.noted": "备注", "li.ev.assignment.dispatched": "派单", "li.ev.assignment.acknowledged": "响应",
    "li.ev.assignment.arrived": "到场报到", "li.ev.assignment.reported": "办结反馈",
    "li.ev.assignment.declined": "申请转派", "li.ev.assignment.transferred": "转派",
    "li.ev.assignment.withdrawn": "撤回派单", "li.ev.assignment.accepted": "结果通过",
    "li.ev.assignment.reopened": "退回重办", "li.ev.assignment.escalated": "超时督办",
    "li.esc": "{kind}超时，第 {level} 级督办", "li.loc": "位置 {lat}, {lon}", "li.suggest": "建议转给{target}",
    "li.system": "系统",
    "li.err.illegal_transition": "当前状态不允许此操作", "li.err.forbidden": "无权执行此操作",
    "li.err.not_found": "派单不存在或已被撤回", "li.err.validation": "填写有误", "li.err.conflict": "状态已变化，请刷新",
    "li.err.command_id_reused": "重复的操作编号", "li.err.internal": "平台故障，请稍后重试",
    "li.err.unauthenticated": "登录已失效，请重新登录",
    "li.chip.r1": "已现场处置完毕", "li.chip.r2": "已劝离并恢复秩序", "li.chip.r3": "已责令限期整改",
    "li.chip.r4": "已调解，双方达成一致",
    "li.chip.d1": "不属于本部门职责", "li.chip.d2": "事发地不在本辖区", "li.chip.d3": "需其他部门牵头处置",
  },
  en: {
    "li.title": "Xianghu · Liaison", "li.menu": "Menu", "li.alertsTest": "Test call alert", "li.logout": "Log out",
    "li.enableAlerts": "Tap to turn on call alerts (sound · vibration · notification)", "li.gotIt": "Got it",
    "li.active": "My assignments", "li.noneActive": "No open assignments", "li.done": "Finished ({n})",
    "li.back": "‹ Back", "li.refresh": "Refresh",
    "li.reportTitle": "Report the result", "li.reportLabel": "What was done", "li.reportSend": "Send result",
    "li.cancel": "Cancel", "li.declineTitle": "Ask to transfer", "li.declineReason": "Reason",
    "li.declineSuggest": "Suggest instead", "li.declineNone": "No suggestion", "li.declineSend": "Send request",
    "li.required": "Required",
    "li.status.live": "Online", "li.status.connecting": "Connecting", "li.status.offline": "Offline",
    "li.offlineBanner": "Offline: actions are kept on this phone and sent when the network is back",
    "li.pendingTitle": "{n} waiting to be sent", "li.refusedTitle": "{n} refused",
    "li.pendingSending": "Sending…", "li.pendingQueued": "Waiting for network", "li.refused": "Refused: {reason}",
    "li.dismiss": "Dismiss", "li.queuedChip": "Not sent yet",
    "li.act.acknowledge": "Acknowledge", "li.act.arrive": "On scene", "li.act.report_result": "Result",
    "li.act.decline": "Decline",
    "li.actLong.acknowledge": "Acknowledge", "li.actLong.arrive": "On scene", "li.actLong.report_result": "Result",
    "li.actLong.decline": "Transfer request",
    "li.detail": "Details ›",
    "li.due.ack": "Acknowledge", "li.due.arrive": "Reach the scene", "li.due.resolve": "Resolve",
    "li.left": "left", "li.over": "overdue",
    "li.newCall": "New call: {title}", "li.notifTitle": "Xianghu · new call ({prio})", "li.rings": "Please acknowledge",
    "li.locating": "Getting location…", "li.withLoc": "On scene, with location", "li.noLoc": "No location; reported on scene",
    "li.queuedToast": "Saved; it will be sent when the network is back", "li.refusedToast": "{action} refused: {reason}",
    "li.sentToast": "{action} reached the command centre",
    "li.logoutPending": "{n} actions have not been sent and will be lost. Log out anyway?",
    "li.cachedNote": "Offline: showing what was saved last", "li.notFound": "Call not found (it may have been transferred)",
    "li.loadFailed": "Could not load, try again later", "li.notLiaison": "This page is for department liaisons",
    "li.f.number": "Number", "li.f.category": "Category", "li.f.priority": "Priority", "li.f.address": "Address",
    "li.f.description": "Description", "li.f.source": "Source", "li.f.reporter": "Reporter",
    "li.f.callState": "Call", "li.f.myState": "Our part", "li.f.dispatched": "Registered", "li.f.ackAt": "Acknowledged", "li.f.arriveAt": "On scene", "li.f.reportAt": "Reported",
    "li.f.result": "Result", "li.f.decline": "Decline reason", "li.f.timeline": "Timeline", "li.f.deadlines": "Deadlines",
    "li.prio.urgent": "Urgent", "li.prio.normal": "Normal", "li.prio.low": "Low",
    "li.st.dispatched": "To acknowledge", "li.st.acknowledged": "Acknowledged", "li.st.on_scene": "On scene",
    "li.st.reported": "Reported, in review", "li.st.accepted": "Accepted", "li.st.declined": "Transfer requested",
    "li.st.transferred": "Transferred", "li.st.withdrawn": "Withdrawn",
    "li.cs.intake": "Intake", "li.cs.dispatched": "Dispatched", "li.cs.in_progress": "In progress",
    "li.cs.review": "In review", "li.cs.accepted": "Accepted", "li.cs.visited": "Visited", "li.cs.closed": "Closed",
    "li.cs.cancelled": "Cancelled",
    "li.src.hotline_12345": "12345 hotline", "li.src.grid": "Grid worker", "li.src.resident_app": "Resident app",
    "li.src.mini_program": "Mini-program", "li.src.walk_in": "Walk-in", "li.src.patrol": "Patrol",
    "li.ev.call.created": "Call registered", "li.ev.call.accepted": "Result accepted", "li.ev.call.sent_back": "Sent back",
    "li.ev.call.visited": "Return visit", "li.ev.call.closed": "Closed", "li.ev.call.cancelled": "Cancelled",
    "li.ev.call.noted": "Note", "li.ev.assignment.dispatched": "Dispatched",
    "li.ev.assignment.acknowledged": "Acknowledged", "li.ev.assignment.arrived": "On scene",
    "li.ev.assignment.reported": "Result reported", "li.ev.assignment.declined": "Transfer requested",
    "li.ev.assignment.transferred": "Transferred", "li.ev.assignment.withdrawn": "Withdrawn",
    "li.ev.assignment.accepted": "Result accepted", "li.ev.assignment.reopened": "Reopened",
    "li.ev.assignment.escalated": "Escalated",
    "li.esc": "{kind} overdue, escalation level {level}", "li.loc": "location {lat}, {lon}",
    "li.suggest": "suggests {target}", "li.system": "system",
    "li.err.illegal_transition": "Not allowed in the current state", "li.err.forbidden": "Not permitted",
    "li.err.not_found": "The assignment no longer exists", "li.err.validation": "Invalid input",
    "li.err.conflict": "The state changed, refresh", "li.err.command_id_reused": "Duplicate action id",
    "li.err.internal": "Hub fault, try again later", "li.err.unauthenticated": "Session expired, log in again",
    "li.chip.r1": "Handled on scene", "li.chip.r2": "Cleared, order restored", "li.chip.r3": "Ordered to fix by a deadline",
    "li.chip.r4": "Mediated, both sides agreed",
    "li.chip.d1": "Not our department's duty", "li.chip.d2": "Not in our area", "li.chip.d3": "Another department must lead",
  },
};
const tt = (key, vars = {}) => t(key, vars, L);

const STORE = "xianghu.liaison";
const CONN_KEY = `${STORE}.conn`;
const ACTIONABLE = ["dispatched", "acknowledged", "on_scene"];
const WAITING = ["reported", "declined"];
const CALL_FINAL = ["closed", "cancelled"];
const NEXT_STATE = { acknowledge: "acknowledged", arrive: "on_scene", report_result: "reported", decline: "declined" };
const DUE_BY_STATE = { dispatched: ["ack", "ack_due"], acknowledged: ["arrive", "arrive_due"], on_scene: ["resolve", "resolve_due"] };
const CALL_FIELDS = ["number", "category", "title", "description", "address", "lat", "lon", "priority", "source",
  "reporter_name", "reporter_phone", "state", "township_id", "created_at"];

const $ = (id) => document.getElementById(id);

// -- small helpers ---------------------------------------------------------------------------------


function ms(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return value;
  const n = Date.parse(value);
  return Number.isNaN(n) ? null : n;
}

function load(key, fallback) {
  try {
    const raw = localStorage.getItem(`${STORE}.${key}`);
    return raw ? JSON.parse(raw) : fallback;
  } catch {
    return fallback;
  }
}

function save(key, value) {
  try {
    localStorage.setItem(`${STORE}.${key}`, JSON.stringify(value));
  } catch { /* storage full: keep working in memory */ }
}

const timeFmt = new Intl.DateTimeFormat(lang() === "en" ? "en-GB" : "zh-CN", {
  timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  hour12: false,
});
const fmtTime = (v) => (ms(v) === null ? "—" : timeFmt.format(new Date(ms(v))));

function fmtSpan(msLeft) {
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
function toast(text, kind = "") {
  const el = $("toast");
  el.textContent = text;
  el.className = `li-toast ${kind}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

function errorText(err) {
  if (!err) return "";
  const known = L[lang()][`li.err.${err.code}`];
  // The hub's message is English and meant for people, not for matching: shown in the English UI only.
  if (lang() === "en" && err.message) return `${known || err.code}: ${err.message}`;
  return known || err.message || err.code || String(err);
}

// -- state -------------------------------------------------------------------------------------------

const S = {
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
const now = () => Date.now() + S.skew;

function persist() {
  save("state", { user_id: S.me && S.me.id, asg: [...S.asg.values()] });
  save("seen", [...S.seen].slice(-500));
}

function targetName(target) {
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

function categoryName(code) {
  const c = S.ref && (S.ref.categories || []).find((x) => x.code === code);
  return c ? (lang() === "en" ? c.name_en : c.name_zh) : code || "";
}

function townshipName(id) {
  const tw = S.ref && (S.ref.townships || []).find((x) => x.id === id);
  return tw ? (lang() === "en" ? tw.name_en : tw.name_zh) : "";
}

function pickCall(doc) {
  const c = {};
  for (const f of CALL_FIELDS) if (f in doc) c[f] = doc[f];
  c.id = doc.id;
  return c;
}

/** Merge the REST list (calls newest first) into the local assignments of my target. */
function mergeCalls(calls) {
  const fromRest = new Set();
  for (const doc of calls) {
    for (const a of doc.assignments || []) {
      if (a.target !== S.me.target) continue;
      fromRest.add(a.id);
      const old = S.asg.get(a.id);
      const seq = doc.last_seq || 0;
      if (old && (old._seq || 0) > seq) continue; // an event newer than this read already arrived
      S.asg.set(a.id, {
        ...a, township_id: doc.township_id, _seq: seq,
        dispatched_at: ms(a.dispatched_at), ack_due: ms(a.ack_due), arrive_due: ms(a.arrive_due),
        resolve_due: ms(a.resolve_due), acknowledged_at: ms(a.acknowledged_at), on_scene_at: ms(a.on_scene_at),
        reported_at: ms(a.reported_at), call: pickCall(doc),
      });
    }
  }
  for (const [id, a] of S.asg) {
    if (!fromRest.has(id) && !ACTIONABLE.includes(a.state) && !WAITING.includes(a.state)) S.asg.delete(id);
  }
}

async function api(path, options = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...options,
    headers: { Accept: "application/json", ...(options.headers || {}) } });
  if (res.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new Error("unauthenticated");
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(data.message || res.statusText), { status: res.status, data });
  return data;
}

let listLoading = null;
async function loadList() {
  if (listLoading) return listLoading;
  listLoading = (async () => {
    try {
      const data = await api("/api/v1/calls?limit=200");
      mergeCalls(data.calls || []);
      // An assignment never shown on this phone that still waits for acknowledgement rings, whether it
      // came as a live event or was dispatched while the page was closed.
      for (const a of S.asg.values()) if (!S.seen.has(a.id)) S.fresh.add(a.id);
      persist();
      render();
      flushAlerts();
    } catch (e) {
      if (e.message !== "unauthenticated") console.warn("list", e);
    } finally {
      listLoading = null;
    }
  })();
  return listLoading;
}

// -- events from the hub -----------------------------------------------------------------------------

function applyEvent(ev) {
  const type = ev.event_type;
  const b = ev.body || {};
  let touched = false;
  if (ev.assignment_id) {
    let a = S.asg.get(ev.assignment_id);
    if (type === "assignment.dispatched") {
      if (b.target !== S.me.target) return;
      a = {
        ...(a || {}), id: ev.assignment_id, call_id: ev.call_id, township_id: ev.township_id, target: b.target,
        state: ev.assignment_state, dispatched_at: ev.at, ack_due: ms(b.ack_due), arrive_due: ms(b.arrive_due),
        resolve_due: ms(b.resolve_due), transferred_from: b.transferred_from || null, _seq: ev.seq,
        call: { ...((a && a.call) || {}), ...(b.call || {}), id: ev.call_id, state: ev.call_state,
                township_id: ev.township_id },
      };
      S.asg.set(a.id, a);
      if (!S.seen.has(a.id)) S.fresh.add(a.id);
      touched = true;
    } else if (a) {
      a.state = ev.assignment_state || a.state;
      a.call.state = ev.call_state || a.call.state;
      a._seq = ev.seq;
      if (type === "assignment.acknowledged") a.acknowledged_at = ev.at;
      else if (type === "assignment.arrived") a.on_scene_at = ev.at;
      else if (type === "assignment.reported") { a.reported_at = ev.at; a.result = b.result; }
      else if (type === "assignment.declined") { a.decline_reason = b.reason; a.suggested_target = b.suggested_target; }
      else if (type === "assignment.reopened" && b.resolve_due) a.resolve_due = ms(b.resolve_due);
      touched = true;
    } else {
      scheduleListReload();
    }
  } else {
    for (const a of S.asg.values()) {
      if (a.call_id === ev.call_id) {
        a.call.state = ev.call_state || a.call.state;
        a._seq = Math.max(a._seq || 0, ev.seq);
        touched = true;
      }
    }
  }
  if (touched) {
    persist();
    render();
  }
  if (S.view === ev.call_id) scheduleDetailReload();
  if (S.caughtUp) flushAlerts();
}

let listTimer = null;
function scheduleListReload() {
  clearTimeout(listTimer);
  listTimer = setTimeout(loadList, 300);
}

let detailTimer = null;
function scheduleDetailReload() {
  clearTimeout(detailTimer);
  detailTimer = setTimeout(() => S.view && loadDetail(S.view), 300);
}

// -- alerts: sound, vibration, system notification ---------------------------------------------------

const Alerts = {
  ctx: null,
  ringTimer: null,
  ringCount: 0,
  ringing: new Set(),
  unlock() {
    try {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return;
      if (!this.ctx) this.ctx = new AC();
      if (this.ctx.state === "suspended") this.ctx.resume().catch(() => {});
    } catch { /* no audio on this device */ }
  },
  get audioReady() {
    return !!this.ctx && this.ctx.state === "running";
  },
  beep() {
    window.__xianghuAlerts && window.__xianghuAlerts.push({ kind: "sound", at: Date.now() });
    if (!this.ctx) return;
    const ctx = this.ctx;
    const t0 = ctx.currentTime + 0.02;
    const gain = ctx.createGain();
    gain.connect(ctx.destination);
    gain.gain.setValueAtTime(0.0001, t0);
    for (let i = 0; i < 6; i++) {
      const start = t0 + i * 0.32;
      const osc = ctx.createOscillator();
      osc.type = "square";
      osc.frequency.setValueAtTime(i % 2 ? 740 : 988, start);
      osc.connect(gain);
      gain.gain.setValueAtTime(0.35, start);
      gain.gain.setValueAtTime(0.0001, start + 0.26);
      osc.start(start);
      osc.stop(start + 0.27);
    }
  },
  vibrate() {
    try {
      if (navigator.vibrate) navigator.vibrate([500, 200, 500, 200, 900]);
    } catch { /* not allowed */ }
  },
  async notify(a) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const title = tt("li.notifTitle", { prio: tt(`li.prio.${a.call.priority || "normal"}`) });
    const options = {
      body: [a.call.title, a.call.address].filter(Boolean).join("\n"), tag: a.id, renotify: true,
      requireInteraction: true, icon: "/liaison/icon.svg", badge: "/liaison/icon.svg",
      vibrate: [500, 200, 500, 200, 900], data: { url: `/liaison/#/call/${a.call_id}` }, lang: lang(),
    };
    try {
      const reg = "serviceWorker" in navigator ? await navigator.serviceWorker.getRegistration("/liaison/") : null;
      if (reg) await reg.showNotification(title, options);
      else new Notification(title, options);
      window.__xianghuAlerts && window.__xianghuAlerts.push({ kind: "notification", tag: a.id });
    } catch (e) {
      console.warn("notification", e);
    }
  },
  ring(list) {
    for (const a of list) this.ringing.add(a.id);
    const first = list[0];
    $("ringing-text").textContent = tt("li.newCall", { title: first.call.title || first.call.number || "" });
    $("ringing").hidden = false;
    this.ringCount = 0;
    const once = () => {
      this.ringCount += 1;
      this.beep();
      this.vibrate();
      if (this.ringCount >= 12) this.stop();
    };
    once();
    clearInterval(this.ringTimer);
    this.ringTimer = setInterval(once, 5000);
    for (const a of list) this.notify(a);
  },
  stop(assignmentId = null) {
    if (assignmentId !== null) {
      this.ringing.delete(assignmentId);
      if (this.ringing.size) return;
    }
    this.ringing.clear();
    clearInterval(this.ringTimer);
    this.ringTimer = null;
    $("ringing").hidden = true;
    try { navigator.vibrate && navigator.vibrate(0); } catch { /* ignore */ }
  },
};

function flushAlerts() {
  const list = [];
  for (const id of S.fresh) {
    const a = S.asg.get(id);
    S.seen.add(id);
    if (a && effectiveState(a) === "dispatched" && !CALL_FINAL.includes(a.call.state)) list.push(a);
  }
  S.fresh.clear();
  persist();
  if (list.length) Alerts.ring(list);
}

function updateAlertBanner() {
  const needNotif = "Notification" in window && Notification.permission === "default";
  $("enable-alerts").hidden = !(needNotif || !Alerts.audioReady);
}

async function enableAlerts() {
  Alerts.unlock();
  if ("Notification" in window && Notification.permission === "default") {
    try { await Notification.requestPermission(); } catch { /* old API or refused */ }
  }
  updateAlertBanner();
}

// -- commands ------------------------------------------------------------------------------------------

let conn = null;

function pendingFor(assignmentId) {
  return conn ? conn.pending().filter((p) => p.args && p.args.assignment_id === assignmentId) : [];
}

/** The state the assignment will be in once the commands queued on this phone reach the hub. */
function effectiveState(a) {
  let s = a.state;
  for (const p of pendingFor(a.id)) if (p.state === "pending" && NEXT_STATE[p.name]) s = NEXT_STATE[p.name];
  return s;
}

function send(a, name, extra = {}) {
  Alerts.stop(a.id);
  const wasLive = conn.status === "live";
  const label = tt(`li.actLong.${name}`);
  conn.command(name, { assignment_id: a.id, ...extra }).then(
    () => toast(tt("li.sentToast", { action: label }), "ok"),
    (err) => toast(tt("li.refusedToast", { action: label, reason: errorText(err) }), "bad"),
  );
  if (!wasLive) toast(tt("li.queuedToast"), "warn");
  render();
}

function getPosition() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(null);
    let done = false;
    const finish = (v) => { if (!done) { done = true; resolve(v); } };
    setTimeout(() => finish(null), 6000);
    try {
      navigator.geolocation.getCurrentPosition(
        (p) => finish({ lat: Math.round(p.coords.latitude * 1e6) / 1e6, lon: Math.round(p.coords.longitude * 1e6) / 1e6 }),
        () => finish(null), { enableHighAccuracy: true, timeout: 5000, maximumAge: 60000 });
    } catch { finish(null); }
  });
}

async function arrive(a) {
  if (S.busy.has(a.id)) return;
  S.busy.add(a.id);
  let perm = "prompt";
  try {
    if (navigator.permissions) perm = (await navigator.permissions.query({ name: "geolocation" })).state;
  } catch { /* unsupported: ask */ }
  let pos = null;
  if (perm !== "denied" && navigator.geolocation) {
    toast(tt("li.locating"));
    pos = await getPosition();
  }
  S.busy.delete(a.id);
  send(a, "arrive", pos ? { lat: pos.lat, lon: pos.lon } : {});
  if (conn.status === "live") toast(tt(pos ? "li.withLoc" : "li.noLoc"));
}

let sheetTarget = null;

function openSheet(kind, a) {
  sheetTarget = a;
  Alerts.stop(a.id);
  const dlg = $(`${kind}-sheet`);
  $(`${kind}-call`).textContent = [a.call.number, a.call.title].filter(Boolean).join(" · ");
  $(`${kind}-error`).textContent = "";
  if (kind === "report") $("report-text").value = "";
  if (kind === "decline") {
    $("decline-reason").value = "";
    const sel = $("decline-target");
    sel.replaceChildren(h("option", { value: "" }, tt("li.declineNone")));
    const tw = S.ref && (S.ref.townships || []).find((x) => x.id === a.township_id);
    const deps = tw ? tw.departments : (S.ref ? S.ref.departments.map((d) => d.code) : []);
    for (const code of deps) if (code !== S.me.target) sel.append(h("option", { value: code }, targetName(code)));
    const units = tw ? (typeof tw.units === "string" ? JSON.parse(tw.units) : tw.units || []) : [];
    for (const u of units) {
      const code = `unit:${u.id}`;
      if (code !== S.me.target) sel.append(h("option", { value: code }, lang() === "en" ? u.name_en : u.name_zh));
    }
  }
  dlg.showModal();
  setTimeout(() => $(kind === "report" ? "report-text" : "decline-reason").focus(), 50);
}

function setupSheets() {
  for (const [kind, chips, field] of [["report", ["r1", "r2", "r3", "r4"], "report-text"],
                                       ["decline", ["d1", "d2", "d3"], "decline-reason"]]) {
    const box = $(`${kind}-chips`);
    for (const c of chips) {
      box.append(h("button", { type: "button", class: "chip", onclick: () => {
        const el = $(field);
        el.value = el.value.trim() ? `${el.value.trim()}；${tt(`li.chip.${c}`)}` : tt(`li.chip.${c}`);
        $(`${kind}-error`).textContent = "";
      } }, tt(`li.chip.${c}`)));
    }
    const dlg = $(`${kind}-sheet`);
    for (const btn of dlg.querySelectorAll("[data-close]")) btn.addEventListener("click", () => dlg.close());
    dlg.addEventListener("click", (e) => { if (e.target === dlg) dlg.close(); }); // tap on the backdrop
  }
  $("report-form").addEventListener("submit", (e) => {
    const text = $("report-text").value.trim();
    if (!text) { e.preventDefault(); $("report-error").textContent = tt("li.required"); return; }
    send(sheetTarget, "report_result", { result: text });
  });
  $("decline-form").addEventListener("submit", (e) => {
    const reason = $("decline-reason").value.trim();
    if (!reason) { e.preventDefault(); $("decline-error").textContent = tt("li.required"); return; }
    const target = $("decline-target").value;
    send(sheetTarget, "decline", target ? { reason, suggested_target: target } : { reason });
  });
}

// -- rendering -------------------------------------------------------------------------------------------

function actionButtons(a) {
  const st = effectiveState(a);
  if (CALL_FINAL.includes(a.call.state)) return null;
  const btns = [];
  // A thumb's double tap must not hit the button that replaces the one just tapped: the second click of
  // a double click (event.detail > 1) is ignored.
  const big = (name, fn) => h("button", { type: "button", class: "btn primary big", dataset: { act: name },
    onclick: (e) => { e.stopPropagation(); if (e.detail <= 1) fn(); } }, tt(`li.act.${name}`));
  const decline = h("button", { type: "button", class: "btn warn", dataset: { act: "decline" },
    onclick: (e) => { e.stopPropagation(); if (e.detail <= 1) openSheet("decline", a); } }, tt("li.act.decline"));
  if (st === "dispatched") btns.push(big("acknowledge", () => send(a, "acknowledge")), decline);
  else if (st === "acknowledged") btns.push(big("arrive", () => arrive(a)), decline);
  else if (st === "on_scene") btns.push(big("report_result", () => openSheet("report", a)));
  return btns.length ? h("div", { class: "actions" }, btns) : null;
}

function dueBlock(a, large = true) {
  const st = effectiveState(a);
  const spec = DUE_BY_STATE[st];
  if (!spec || CALL_FINAL.includes(a.call.state)) return null;
  const due = a[spec[1]];
  if (!due) return null;
  return h("div", { class: `due ${large ? "large" : ""}`, dataset: { due: String(due), kind: spec[0] } },
    h("span", { class: "due-label" }, tt(`li.due.${spec[0]}`)),
    h("span", { class: "due-time" }), h("span", { class: "due-suffix" }));
}

function tickDue(root = document) {
  const n = now();
  for (const el of root.querySelectorAll(".due[data-due]")) {
    const left = Number(el.dataset.due) - n;
    const over = left < 0;
    el.classList.toggle("over", over);
    el.classList.toggle("soon", !over && left < 60000);
    el.querySelector(".due-time").textContent = fmtSpan(left);
    el.querySelector(".due-suffix").textContent = over ? tt("li.over") : tt("li.left");
  }
}

function card(a) {
  const st = effectiveState(a);
  const queued = pendingFor(a.id).filter((p) => p.state === "pending").length;
  const prio = a.call.priority || "normal";
  return h("li", { class: `card prio-${prio} st-${st}`, dataset: { assignment: a.id, call: a.call_id, state: st },
    onclick: () => go(a.call_id) },
    h("div", { class: "card-top" },
      h("span", { class: `prio prio-${prio}` }, tt(`li.prio.${prio}`)),
      h("span", { class: "cat" }, categoryName(a.call.category)),
      h("span", { class: "num" }, a.call.number || "")),
    h("div", { class: "card-title" }, a.call.title || ""),
    a.call.address ? h("div", { class: "card-addr" }, a.call.address) : null,
    dueBlock(a),
    h("div", { class: "card-state" },
      h("span", { class: "state" }, tt(`li.st.${st}`)),
      CALL_FINAL.includes(a.call.state) ? h("span", { class: "state bad" }, tt(`li.cs.${a.call.state}`)) : null,
      queued ? h("span", { class: "queued" }, tt("li.queuedChip")) : null),
    actionButtons(a),
    h("button", { type: "button", class: "link", dataset: { act: "detail" } }, tt("li.detail")));
}

function sortedAssignments() {
  const all = [...S.asg.values()];
  const rank = (a) => {
    const st = effectiveState(a);
    if (CALL_FINAL.includes(a.call.state)) return 3;
    if (ACTIONABLE.includes(st)) return 0;
    if (WAITING.includes(st)) return 1;
    return 3;
  };
  all.sort((x, y) => rank(x) - rank(y) || (y.dispatched_at || 0) - (x.dispatched_at || 0));
  return all.map((a) => [a, rank(a)]);
}

function renderPending() {
  const items = conn ? conn.pending() : [];
  const box = $("pending");
  box.hidden = items.length === 0;
  const queued = items.filter((p) => p.state === "pending").length;
  const refused = items.length - queued;
  $("pending-title").textContent = [queued ? tt("li.pendingTitle", { n: queued }) : "",
    refused ? tt("li.refusedTitle", { n: refused }) : ""].filter(Boolean).join(" · ");
  const list = $("pending-list");
  list.replaceChildren(...items.map((p) => {
    const a = p.args && S.asg.get(p.args.assignment_id);
    const what = a ? (a.call.title || a.call.number) : (p.args && p.args.assignment_id) || "";
    const refusedItem = p.state === "refused";
    return h("li", { class: `pending-item ${refusedItem ? "refused" : ""}`, dataset: { command: p.command_id, name: p.name, state: p.state } },
      h("div", { class: "pending-main" },
        h("strong", {}, tt(`li.actLong.${p.name}`)), " · ", what,
        h("div", { class: "pending-sub" }, fmtTime(p.queued_at), " · ",
          refusedItem ? tt("li.refused", { reason: errorText(p.error) })
            : conn.status === "live" ? tt("li.pendingSending") : tt("li.pendingQueued"))),
      refusedItem ? h("button", { type: "button", class: "btn small", onclick: () => { conn.dismiss(p.command_id); render(); } },
        tt("li.dismiss")) : null);
  }));
}

function render() {
  if (!S.me) return;
  for (const id of [...Alerts.ringing]) {
    const a = S.asg.get(id);
    if (!a || effectiveState(a) !== "dispatched" || CALL_FINAL.includes(a.call.state)) Alerts.stop(id);
  }
  renderPending();
  const active = [];
  const done = [];
  for (const [a, rank] of sortedAssignments()) (rank < 3 ? active : done).push(card(a));
  $("active").replaceChildren(...active);
  $("active-empty").hidden = active.length > 0;
  $("done").replaceChildren(...done.slice(0, 30));
  $("done-title").textContent = tt("li.done", { n: done.length });
  $("done-wrap").parentElement.hidden = done.length === 0;
  if (S.view) renderDetail();
  tickDue();
}

function renderStatus() {
  const status = conn ? conn.status : "connecting";
  const offline = status === "offline" || !navigator.onLine;
  const shown = offline ? "offline" : status;
  $("conn").dataset.status = shown;
  $("conn-text").textContent = tt(`li.status.${shown}`);
  $("offline-banner").hidden = !offline;
  $("offline-banner").textContent = tt("li.offlineBanner");
  renderPending();
}

// -- detail view ---------------------------------------------------------------------------------------

let detailState = { id: null, data: null, cached: false, error: null };

async function loadDetail(callId) {
  try {
    const data = await api(`/api/v1/calls/${callId}`);
    S.details[callId] = data;
    const keys = Object.keys(S.details);
    for (const k of keys.slice(0, Math.max(0, keys.length - 20))) delete S.details[k];
    save("details", S.details);
    mergeCalls([data]);
    persist();
    if (S.view === callId) detailState = { id: callId, data, cached: false, error: null };
  } catch (e) {
    if (S.view !== callId) return;
    const cached = S.details[callId];
    detailState = { id: callId, data: cached || null, cached: !!cached,
                    error: e.status === 404 ? tt("li.notFound") : cached ? null : tt("li.loadFailed") };
  }
  render();
}

function field(label, value, cls = "") {
  if (value === null || value === undefined || value === "") return null;
  return h("div", { class: `field ${cls}` }, h("dt", {}, label), h("dd", {}, value));
}

function timelineText(e) {
  const b = e.body || {};
  switch (e.type) {
    case "assignment.dispatched":
      return [targetName(b.target), b.transferred_from ? "↪" : ""].join(" ");
    case "assignment.arrived":
      return b.lat !== null && b.lat !== undefined ? tt("li.loc", { lat: b.lat, lon: b.lon }) : "";
    case "assignment.reported": return b.result || "";
    case "assignment.declined":
      return [b.reason, b.suggested_target ? tt("li.suggest", { target: targetName(b.suggested_target) }) : ""]
        .filter(Boolean).join(" · ");
    case "assignment.transferred": return `→ ${targetName(b.to_target)}`;
    case "assignment.escalated":
      return tt("li.esc", { kind: tt(`li.due.${b.deadline_kind}`), level: b.level });
    case "call.noted": return b.text || "";
    case "call.visited": return b.comment || "";
    default: return b.reason || "";
  }
}

function renderDetail() {
  const box = $("detail");
  const { data, cached, error } = detailState;
  const mine = [...S.asg.values()].filter((a) => a.call_id === S.view);
  const call = data || (mine[0] && { ...mine[0].call, assignments: [], timeline: [] });
  if (!call) {
    box.replaceChildren(h("p", { class: "empty" }, error || "…"));
    return;
  }
  const prio = call.priority || "normal";
  const reporter = [call.reporter_name, call.reporter_phone].filter(Boolean).join(" ");
  const nodes = [];
  if (cached) nodes.push(h("p", { class: "note" }, tt("li.cachedNote")));
  if (error) nodes.push(h("p", { class: "note bad" }, error));
  nodes.push(h("div", { class: "detail-top" },
    h("span", { class: `prio prio-${prio}` }, tt(`li.prio.${prio}`)),
    h("span", { class: "cat" }, categoryName(call.category)),
    h("span", { class: "num" }, call.number || "")));
  nodes.push(h("h1", { class: "detail-title" }, call.title || ""));
  for (const a of mine) {
    nodes.push(h("section", { class: `mine st-${effectiveState(a)}`, dataset: { assignment: a.id } },
      h("div", { class: "card-state" }, h("span", { class: "state" }, tt(`li.st.${effectiveState(a)}`)),
        pendingFor(a.id).some((p) => p.state === "pending") ? h("span", { class: "queued" }, tt("li.queuedChip")) : null),
      dueBlock(a),
      actionButtons(a),
      h("dl", { class: "fields small" },
        field(tt("li.due.ack"), fmtTime(a.ack_due)), field(tt("li.due.arrive"), fmtTime(a.arrive_due)),
        field(tt("li.due.resolve"), fmtTime(a.resolve_due)),
        field(tt("li.f.ackAt"), a.acknowledged_at ? fmtTime(a.acknowledged_at) : ""),
        field(tt("li.f.arriveAt"), a.on_scene_at ? fmtTime(a.on_scene_at) : ""),
        field(tt("li.f.reportAt"), a.reported_at ? fmtTime(a.reported_at) : ""),
        field(tt("li.f.result"), a.result), field(tt("li.f.decline"), a.decline_reason))));
  }
  nodes.push(h("dl", { class: "fields" },
    field(tt("li.f.address"), call.address),
    field(tt("li.f.description"), call.description, "wide"),
    field(tt("li.f.source"), call.source ? tt(`li.src.${call.source}`) : ""),
    field(tt("li.f.reporter"), reporter),
    field(tt("li.f.callState"), call.state ? tt(`li.cs.${call.state}`) : ""),
    field(tt("li.f.dispatched"), fmtTime(call.created_at))));
  const timeline = (data && data.timeline) || [];
  if (timeline.length) {
    nodes.push(h("h2", { class: "section-title" }, tt("li.f.timeline")));
    nodes.push(h("ol", { class: "timeline" }, [...timeline].reverse().map((e) => h("li", { dataset: { type: e.type } },
      h("div", { class: "tl-head" }, h("strong", {}, tt(`li.ev.${e.type}`)),
        h("span", { class: "tl-time" }, fmtTime(e.at))),
      h("div", { class: "tl-who" }, e.actor && e.actor.role === "system" ? tt("li.system") : (e.actor && e.actor.name) || ""),
      timelineText(e) ? h("div", { class: "tl-text" }, timelineText(e)) : null))));
  }
  box.replaceChildren(...nodes);
}

function go(callId) {
  location.hash = callId ? `#/call/${callId}` : "";
}

function route() {
  const m = /^#\/call\/([0-9a-f-]{36})$/.exec(location.hash);
  const id = m ? m[1] : null;
  S.view = id;
  $("list-view").hidden = !!id;
  $("detail-view").hidden = !id;
  if (id) {
    for (const a of S.asg.values()) if (a.call_id === id) Alerts.stop(a.id);
    detailState = { id, data: S.details[id] || null, cached: !!S.details[id], error: null };
    renderDetail();
    tickDue();
    loadDetail(id);
    window.scrollTo(0, 0);
  } else {
    render();
  }
}

// -- start ---------------------------------------------------------------------------------------------

async function loadMe() {
  try {
    const res = await fetch("/api/v1/me", { credentials: "same-origin" });
    if (res.status === 401) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname);
      return null;
    }
    const me = await res.json();
    save("me", me);
    return me;
  } catch {
    return load("me", null); // offline start from the installed app: the last known user
  }
}

async function loadRef() {
  try {
    S.ref = await api("/api/v1/reference");
    save("ref", S.ref);
  } catch { /* keep the cached one */ }
}

function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register("/liaison/sw.js", { scope: "/liaison/" }).then(async () => {
    const reg = await navigator.serviceWorker.ready;
    const urls = performance.getEntriesByType("resource").map((e) => e.name)
      .filter((u) => u.startsWith(location.origin) && !u.includes("/api/") && !u.includes("/ws"));
    (reg.active || navigator.serviceWorker.controller)?.postMessage({ type: "cache", urls: [...urls, location.pathname] });
  }).catch((e) => console.warn("service worker", e));
  navigator.serviceWorker.addEventListener("message", (e) => {
    if (e.data && e.data.type === "open" && e.data.url) {
      const u = new URL(e.data.url, location.href);
      location.hash = u.hash;
    }
  });
}

async function logout() {
  const waiting = conn ? conn.pending().filter((p) => p.state === "pending").length : 0;
  if (waiting && !confirm(tt("li.logoutPending", { n: waiting }))) return;
  try { await fetch("/api/v1/logout", { method: "POST", credentials: "same-origin" }); } catch { /* offline */ }
  if (conn) conn.stop();
  for (const k of Object.keys(localStorage)) if (k.startsWith(STORE)) localStorage.removeItem(k);
  location.href = "/login";
}

async function main() {
  applyI18n(document, L);
  for (const el of document.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", tt(el.dataset.i18nAria));
  renderStatus();
  S.me = await loadMe();
  if (!S.me) {
    $("who").textContent = tt("li.loadFailed");
    return;
  }
  if (S.me.role !== "liaison") {
    const landing = { operator: "/operator/", supervisor: "/supervisor/", admin: "/supervisor/" }[S.me.role];
    if (landing) { location.href = landing; return; }
    $("who").textContent = tt("li.notLiaison");
    return;
  }
  const cached = load("state", null);
  if (cached && cached.user_id === S.me.id) for (const a of cached.asg || []) S.asg.set(a.id, a);
  await loadRef();
  $("who").textContent = [S.me.name, targetName(S.me.target), townshipName(S.me.township_id)].filter(Boolean).join(" · ");

  conn = new Connection({ storageKey: CONN_KEY });
  conn.addEventListener("status", () => {
    if (conn.status !== "live") S.caughtUp = false;
    renderStatus();
    render();
  });
  conn.addEventListener("welcome", (e) => {
    const w = e.detail;
    if (w && typeof w.server_time === "number") S.skew = w.server_time - Date.now();
    S.caughtUp = false;
  });
  conn.addEventListener("event", (e) => applyEvent(e.detail));
  conn.addEventListener("caught_up", () => {
    S.caughtUp = true;
    flushAlerts();
    scheduleListReload();
  });
  conn.addEventListener("resync", () => scheduleListReload());
  conn.addEventListener("pending", () => {
    for (const p of conn.pending()) {
      if (p.state === "refused" && !S.refusalsShown.has(p.command_id)) S.refusalsShown.add(p.command_id);
    }
    render();
  });
  window.addEventListener("online", renderStatus);
  window.addEventListener("offline", renderStatus);

  $("menu-btn").addEventListener("click", () => { $("menu").hidden = !$("menu").hidden; });
  $("lang").addEventListener("click", () => setLang(lang() === "en" ? "zh-CN" : "en"));
  $("logout").addEventListener("click", logout);
  $("alerts-test").addEventListener("click", () => {
    $("menu").hidden = true;
    Alerts.unlock();
    Alerts.beep();
    Alerts.vibrate();
  });
  $("enable-alerts").addEventListener("click", enableAlerts);
  $("ringing-stop").addEventListener("click", () => Alerts.stop());
  $("back").addEventListener("click", () => go(null));
  $("detail-refresh").addEventListener("click", () => S.view && loadDetail(S.view));
  document.addEventListener("pointerdown", () => { Alerts.unlock(); setTimeout(updateAlertBanner, 100); }, { passive: true });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && conn.status === "live") scheduleListReload();
  });
  window.addEventListener("hashchange", route);
  setupSheets();
  updateAlertBanner();
  setInterval(() => tickDue(), 1000);

  render();
  route();
  await loadList();
  conn.start();
  registerServiceWorker();
  document.body.dataset.ready = "1";
}

main();
