// UI strings: zh-CN by default, English on request (?lang=en or the switch, remembered locally).
const STRINGS = {
  "zh-CN": {
    app: "乡呼 · 镇街综合指挥调度", login: "登录", username: "用户名", password: "密码",
    submit: "登 录", logout: "退出", wrong: "用户名或密码错误", tooMany: "登录失败次数过多，请 {s} 秒后再试",
    required: "请填写此项", network: "无法连接到指挥平台，请检查网络", close: "关闭",
    operator: "操作员控制台", liaison: "联络员", supervisor: "督查考核", admin: "系统管理",
    welcome: "欢迎，{name}", lang: "English",
    // connection
    "conn.live": "实时", "conn.connecting": "连接中…", "conn.offline": "已断开，正在重连",
    "pending.count": "{n} 条指令待发送", "refused": "被拒绝", "dismiss": "知道了",
    // states
    "call.intake": "待派单", "call.dispatched": "已派单", "call.in_progress": "处置中", "call.review": "待审核",
    "call.accepted": "已审核", "call.visited": "已回访", "call.closed": "已结案", "call.cancelled": "已撤销",
    "asg.dispatched": "待响应", "asg.acknowledged": "已响应", "asg.on_scene": "已到场", "asg.reported": "已办结待审",
    "asg.accepted": "审核通过", "asg.declined": "转派审核中", "asg.transferred": "已转派", "asg.withdrawn": "已撤回",
    "prio.urgent": "紧急", "prio.normal": "一般", "prio.low": "较低",
    "src.hotline_12345": "12345热线", "src.grid": "网格员", "src.resident_app": "嘟来办", "src.mini_program": "汶诉即办",
    "src.walk_in": "来访", "src.patrol": "巡查",
    "dl.ack": "响应", "dl.arrive": "到场", "dl.resolve": "办结", "dl.review": "转派审核",
  },
  en: {
    app: "Xianghu · Township joint-enforcement dispatch", login: "Log in", username: "Username",
    password: "Password", submit: "Log in", logout: "Log out", wrong: "Wrong username or password",
    tooMany: "Too many failed logins, try again in {s} s", required: "Required", close: "Close",
    network: "Cannot reach the hub, check the network",
    operator: "Operator console", liaison: "Liaison", supervisor: "Supervisor review", admin: "Administration",
    welcome: "Welcome, {name}", lang: "中文",
    "conn.live": "Live", "conn.connecting": "Connecting…", "conn.offline": "Offline, reconnecting",
    "pending.count": "{n} command(s) waiting to be sent", "refused": "refused", "dismiss": "Dismiss",
    "call.intake": "Awaiting dispatch", "call.dispatched": "Dispatched", "call.in_progress": "In progress",
    "call.review": "Awaiting review", "call.accepted": "Reviewed", "call.visited": "Visited", "call.closed": "Closed",
    "call.cancelled": "Cancelled",
    "asg.dispatched": "Awaiting response", "asg.acknowledged": "Acknowledged", "asg.on_scene": "On scene",
    "asg.reported": "Result reported", "asg.accepted": "Accepted", "asg.declined": "Transfer requested",
    "asg.transferred": "Transferred",
    "asg.withdrawn": "Withdrawn",
    "prio.urgent": "Urgent", "prio.normal": "Normal", "prio.low": "Low",
    "src.hotline_12345": "12345 hotline", "src.grid": "Grid worker", "src.resident_app": "Resident app",
    "src.mini_program": "Mini-program", "src.walk_in": "Walk-in", "src.patrol": "Patrol",
    "dl.ack": "ack", "dl.arrive": "arrival", "dl.resolve": "resolution", "dl.review": "transfer review",
  },
};

/** Add strings (e.g. a console's own) to the tables: addStrings({"zh-CN": {...}, en: {...}}). */
export function addStrings(tables) {
  for (const [code, table] of Object.entries(tables)) Object.assign(STRINGS[code] ||= {}, table);
}

export function lang() {
  const q = new URLSearchParams(location.search).get("lang");
  if (q === "en" || q === "zh-CN") localStorage.setItem("xianghu.lang", q);
  return localStorage.getItem("xianghu.lang") === "en" ? "en" : "zh-CN";
}

/** Headers that ask the hub for its messages in the UI's language (errors are {code, message, field}). */
export function langHeaders(extra = {}) {
  return { "Accept-Language": lang(), ...extra };
}

export function setLang(value) {
  localStorage.setItem("xianghu.lang", value);
  location.reload();
}

export function t(key, vars = {}, extra = {}) {
  const table = { ...STRINGS[lang()], ...(extra[lang()] || {}) };
  let s = table[key] ?? STRINGS["zh-CN"][key] ?? key;
  for (const [k, v] of Object.entries(vars)) s = s.replace(`{${k}}`, String(v));
  return s;
}

export function applyI18n(root = document, extra = {}) {
  document.documentElement.lang = lang();
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n, {}, extra);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder, {}, extra);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle, {}, extra);
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel, {}, extra));
}
