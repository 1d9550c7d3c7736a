// UI strings: zh-CN by default, English on request (?lang=en or the switch, remembered locally).
const STRINGS = {
  "zh-CN": {
    app: "乡呼 · 镇街综合指挥调度", login: "登录", username: "用户名", password: "密码",
    submit: "登 录", logout: "退出", wrong: "用户名或密码错误", tooMany: "登录失败次数过多，请 {s} 秒后再试",
    required: "请填写此项", network: "无法连接到指挥平台，请检查网络",
    operator: "操作员控制台", liaison: "联络员", supervisor: "督查考核", admin: "系统管理",
    welcome: "欢迎，{name}", lang: "English",
  },
  en: {
    app: "Xianghu · Township joint-enforcement dispatch", login: "Log in", username: "Username",
    password: "Password", submit: "Log in", logout: "Log out", wrong: "Wrong username or password",
    tooMany: "Too many failed logins, try again in {s} s", required: "Required",
    network: "Cannot reach the hub, check the network",
    operator: "Operator console", liaison: "Liaison", supervisor: "Supervisor review", admin: "Administration",
    welcome: "Welcome, {name}", lang: "中文",
  },
};

export function lang() {
  const q = new URLSearchParams(location.search).get("lang");
  if (q === "en" || q === "zh-CN") localStorage.setItem("xianghu.lang", q);
  return localStorage.getItem("xianghu.lang") === "en" ? "en" : "zh-CN";
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
}
