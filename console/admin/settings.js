// The admin console's 设置 tab: categories and their default departments, the deadlines and the escalation
// ladder, the evaluation weights. Each section is saved whole with the version it was read at; a change someone
// else saved since is refused (409) and said so. Saved settings are in effect on every node at once, for
// deadlines set after the save (docs/CONFIGURATION.md "Settings in the database").
//
// Contract with admin.js: mount(container, ctx), ctx = { api, t, lang }; api(path, { method, body }) sends
// ``body`` as JSON and resolves to the JSON answer or throws { code, message, field, status }; lang() is
// "zh-CN" or "en".
import { h } from "/shared/dom.js";
import { fmtDateTime } from "/shared/format.js";

const BASE = "/api/v1/admin/settings";
const PRIORITIES = ["urgent", "normal", "low"];
const CLOCKS = ["ack", "arrive", "resolve"];
const KINDS = ["ack", "arrive", "resolve", "review"];
const AUDIENCES = ["liaisons", "team_lead", "department_head", "operators", "leader", "supervisor", "county"];
const RATES = ["response_rate", "arrive_rate", "result_rate", "resolution_rate", "satisfaction_rate"];
const LEVELS_ZH = ["一级督办", "二级督办", "三级督办"];

const STRINGS = {
  "zh-CN": {
    title: "设置", loading: "加载中…", loadFailed: "无法加载设置：{m}", reload: "重新加载",
    "sec.categories": "诉求类别与派发", "sec.sla": "时限与督办", "sec.evaluation": "考核权重",
    fromFile: "配置文件默认值（尚未在此修改）", version: "版本 {v} · {who} · {at}",
    save: "保存", saving: "保存中…", saved: "已保存为版本 {v}。新的时限只适用于保存之后派单（或重新计时）的派单，已在计时的派单仍按原规则。",
    history: "历史版本", hideHistory: "收起历史版本", noHistory: "尚无保存的版本，正在使用配置文件的默认值。",
    historyItem: "版本 {v} · {who} · {at}",
    conflict: "{m}", fixErrors: "请先改正标红的项。",
    failed: "保存失败：{m}", remove: "删除", add: "添加",
    // categories
    "cat.code": "代码", "cat.zh": "中文名称", "cat.en": "英文名称", "cat.route": "默认派驻部门", "cat.retired": "停用",
    "cat.inUse": "已有呼叫使用：只能停用，不能删除", "cat.add": "添加类别",
    "cat.hint": "停用的类别保留在已有呼叫上，新呼叫不能再选用。",
    // sla
    "sla.within": "各紧急程度的时限（分钟，从派单时起算）", "sla.priority": "紧急程度",
    "sla.ack": "响应时限", "sla.arrive": "到场时限", "sla.resolve": "办结时限",
    "sla.review": "转派审核时限（分钟，从申请转派时起算）",
    "sla.overrides": "按部门或类别另定时限（留空则沿用上表）", "sla.scope": "适用于", "sla.scopeDept": "部门",
    "sla.scopeCat": "类别", "sla.which": "部门或类别", "sla.addOverride": "添加另定时限",
    "sla.ladder": "督办层级", "sla.level": "层级", "sla.after": "超时后（分钟）", "sla.notify": "通知对象",
    "sla.every": "重复间隔（分钟）", "sla.count": "重复次数", "sla.addLevel": "添加一级督办",
    "kind.ack": "响应超时", "kind.arrive": "到场超时", "kind.resolve": "办结超时", "kind.review": "转派审核超时",
    "prio.urgent": "紧急", "prio.normal": "一般", "prio.low": "较低",
    "aud.liaisons": "联络员", "aud.team_lead": "带班组长", "aud.department_head": "部门负责人", "aud.operators": "值班员",
    "aud.leader": "镇街领导", "aud.supervisor": "督查", "aud.county": "县级（部门负责人、镇街领导、督查）",
    // evaluation
    "ev.preset": "默认方案", "ev.name": "方案", "ev.total": "合计", "ev.addPreset": "添加方案",
    "ev.response_rate": "响应率", "ev.arrive_rate": "到场及时率", "ev.result_rate": "办结及时率",
    "ev.resolution_rate": "解决率", "ev.satisfaction_rate": "满意率", "ev.newName": "新方案代码",
    // errors (in Chinese next to the field)
    "e.required": "请填写此项", "e.positive": "须为大于 0 的分钟数", "e.nonNegative": "须为不小于 0 的数",
    "e.order": "须满足 响应时限 ≤ 到场时限 ≤ 办结时限", "e.ladder": "各级督办的超时时间不能比上一级早",
    "e.audience": "至少选择一个通知对象", "e.route": "至少选择一个部门", "e.code": "代码为 2–40 个小写字母、数字或下划线，以字母开头",
    "e.duplicate": "代码重复", "e.sum": "权重合计须为 100%（现为 {n}%）", "e.every": "重复间隔至少 10 秒",
    "e.count": "重复次数为 0–20 的整数",
  },
  en: {
    title: "Settings", loading: "Loading…", loadFailed: "Cannot load the settings: {m}", reload: "Reload",
    "sec.categories": "Categories and routing", "sec.sla": "Deadlines and escalation", "sec.evaluation": "Evaluation weights",
    fromFile: "The configuration file's defaults (not changed here yet)", version: "Version {v} · {who} · {at}",
    save: "Save", saving: "Saving…", saved: "Saved as version {v}. New deadlines apply to assignments dispatched (or restarted) after the save; running clocks keep their rules.",
    history: "History", hideHistory: "Hide history", noHistory: "No version saved yet: the configuration file's defaults are in effect.",
    historyItem: "Version {v} · {who} · {at}",
    conflict: "{m}", fixErrors: "Correct the fields marked in red first.",
    failed: "Not saved: {m}", remove: "Remove", add: "Add",
    "cat.code": "Code", "cat.zh": "Chinese name", "cat.en": "English name", "cat.route": "Default departments", "cat.retired": "Retired",
    "cat.inUse": "Calls use it: retire it, it cannot be removed", "cat.add": "Add a category",
    "cat.hint": "A retired category stays on the calls that have it; new calls cannot use it.",
    "sla.within": "Deadlines by priority (minutes from dispatch)", "sla.priority": "Priority",
    "sla.ack": "Acknowledge", "sla.arrive": "On scene", "sla.resolve": "Result",
    "sla.review": "Transfer review deadline (minutes from the request)",
    "sla.overrides": "Other deadlines for a department or category (blank: as above)", "sla.scope": "For", "sla.scopeDept": "Department",
    "sla.scopeCat": "Category", "sla.which": "Department or category", "sla.addOverride": "Add an override",
    "sla.ladder": "Escalation ladder", "sla.level": "Level", "sla.after": "After the deadline (minutes)", "sla.notify": "Who is told",
    "sla.every": "Repeat every (minutes)", "sla.count": "Repeats", "sla.addLevel": "Add a level",
    "kind.ack": "Acknowledge overdue", "kind.arrive": "Arrival overdue", "kind.resolve": "Result overdue", "kind.review": "Transfer review overdue",
    "prio.urgent": "Urgent", "prio.normal": "Normal", "prio.low": "Low",
    "aud.liaisons": "Liaisons", "aud.team_lead": "Team lead", "aud.department_head": "Department head", "aud.operators": "Operators",
    "aud.leader": "Township leader", "aud.supervisor": "Supervisors", "aud.county": "County (department head, township leader, supervisors)",
    "ev.preset": "Default preset", "ev.name": "Preset", "ev.total": "Total", "ev.addPreset": "Add a preset",
    "ev.response_rate": "Response rate", "ev.arrive_rate": "On-scene on time", "ev.result_rate": "Result on time",
    "ev.resolution_rate": "Resolution rate", "ev.satisfaction_rate": "Satisfaction rate", "ev.newName": "New preset code",
    "e.required": "Required", "e.positive": "Minutes greater than 0", "e.nonNegative": "Not below 0",
    "e.order": "Must be acknowledge ≤ on scene ≤ result", "e.ladder": "A level cannot fire before the one above it",
    "e.audience": "Choose at least one", "e.route": "Choose at least one department", "e.code": "2–40 of a-z 0-9 _, starting with a letter",
    "e.duplicate": "Duplicate code", "e.sum": "Weights must add up to 100% (now {n}%)", "e.every": "At least 10 seconds",
    "e.count": "A whole number 0–20",
  },
};

let uid = 0;
const nextId = (p) => `set-${p}-${++uid}`;
const minutes = (s) => (s === null || s === undefined ? "" : String(Math.round((s / 60) * 1000) / 1000));
const seconds = (m) => Math.round(Number(m) * 60 * 1000) / 1000;

export async function mount(container, ctx = {}) {
  const lang = () => (typeof ctx.lang === "function" ? ctx.lang() : ctx.lang) === "en" ? "en" : "zh-CN";
  const tr = (key, vars = {}) => {
    let s = STRINGS[lang()][key] ?? STRINGS["zh-CN"][key] ?? (ctx.t ? ctx.t(key, vars) : key);
    for (const [k, v] of Object.entries(vars)) s = s.replace(`{${k}}`, String(v));
    return s;
  };
  const api = ctx.api || ownApi;
  const S = { ref: null, sections: {} };

  ensureStyles();
  container.replaceChildren(h("p", { class: "set-state", role: "status" }, tr("loading")));
  container.classList.add("settings");
  try {
    const [ref, categories, sla, evaluation] = await Promise.all([
      api("/api/v1/reference"), api(`${BASE}/categories`), api(`${BASE}/sla`), api(`${BASE}/evaluation`)]);
    S.ref = ref;
    Object.assign(S.sections, { categories, sla, evaluation });
  } catch (e) {
    container.replaceChildren(h("p", { class: "set-state error", role: "alert" }, tr("loadFailed", { m: e.message || e })),
      h("button", { type: "button", onclick: () => mount(container, ctx) }, tr("reload")));
    return;
  }
  const deptName = (code) => {
    const d = (S.ref.departments || []).find((x) => x.code === code);
    return d ? (lang() === "en" ? d.name_en : d.name_zh) : code;
  };
  const catName = (code, value) => {
    const c = (value || S.sections.categories.value)[code];
    return c ? (lang() === "en" ? c.en : c.zh) : code;
  };

  const panels = {};
  const builders = { categories: buildCategories, sla: buildSla, evaluation: buildEvaluation };
  const nav = h("nav", { class: "set-nav", "aria-label": tr("title") },
    ...Object.keys(builders).map((name) => h("a", { href: `#set-${name}` }, tr(`sec.${name}`))));
  container.replaceChildren(nav);
  for (const name of Object.keys(builders)) {
    panels[name] = h("section", { class: "set-panel", id: `set-${name}`, "aria-labelledby": `set-${name}-h` });
    container.append(panels[name]);
    render(name);
  }

  // -- one section: heading, version, form, save, history -------------------------------------------
  function render(name) {
    const sec = S.sections[name];
    const panel = panels[name];
    const body = h("div", { class: "set-body", "data-key": name, "data-slot": "" });
    const collect = builders[name](body, sec);
    const status = h("p", { class: "set-status", role: "status", "aria-live": "polite" });
    const save = h("button", { type: "button", class: "primary", "data-save": name }, tr("save"));
    const historyBox = h("div", { class: "set-history", hidden: true });
    const historyBtn = h("button", { type: "button", class: "ghost", "aria-expanded": "false" }, tr("history"));
    historyBtn.addEventListener("click", () => toggleHistory(name, historyBox, historyBtn));
    save.addEventListener("click", () => submit(name, panel, collect, status, save));
    panel.replaceChildren(
      h("h2", { id: `set-${name}-h` }, tr(`sec.${name}`)),
      h("p", { class: "muted set-version", "data-version": sec.version }, sec.version
        ? tr("version", { v: sec.version, who: sec.changed_by || "", at: fmtDateTime(sec.changed_at) })
        : tr("fromFile")),
      body,
      h("div", { class: "set-actions" }, save, historyBtn, status),
      historyBox);
  }

  async function submit(name, panel, collect, status, button) {
    clearErrors(panel);
    status.className = "set-status";
    let value;
    try {
      value = collect();
    } catch (e) {
      if (e.field) showError(panel, e.field, e.message);
      status.textContent = tr("fixErrors");
      status.classList.add("error");
      return;
    }
    if (panel.querySelector("[aria-invalid=true]")) {
      status.textContent = tr("fixErrors");
      status.classList.add("error");
      return;
    }
    button.disabled = true;
    status.textContent = tr("saving");
    try {
      // ?lang=: the hub's refusal in the UI's language, whatever headers the console's api sends
      const saved = await api(`${BASE}/${name}?lang=${lang()}`,
        { method: "PUT", body: { based_on: S.sections[name].version, value } });
      S.sections[name] = saved;
      if (name === "categories") S.sections.categories = saved;
      render(name);
      const again = panels[name].querySelector(".set-status");
      again.textContent = tr("saved", { v: saved.version });
      again.classList.add("ok");
      if (name === "categories") render("sla"); // the overrides name categories
    } catch (e) {
      button.disabled = false;
      status.classList.add("error");
      const message = e.message || String(e);
      if (e.code === "conflict" || e.status === 409) {
        status.replaceChildren(tr("conflict", { m: message }), " ",
          h("button", { type: "button", onclick: () => reload(name) }, tr("reload")));
        return;
      }
      const shown = e.field ? showError(panel, e.field, reasonOnly(message)) : false;
      status.textContent = shown ? tr("fixErrors") : tr("failed", { m: message });
    }
  }

  async function reload(name) {
    S.sections[name] = await api(`${BASE}/${name}`);
    render(name);
  }

  async function toggleHistory(name, box, button) {
    if (!box.hidden) {
      box.hidden = true;
      button.textContent = tr("history");
      button.setAttribute("aria-expanded", "false");
      return;
    }
    const data = await api(`${BASE}/${name}/history`);
    box.replaceChildren(data.versions.length
      ? h("ol", { class: "set-versions" }, ...data.versions.map((v) => h("li", {},
        h("div", { class: "set-vhead" }, tr("historyItem", { v: v.version, who: v.changed_by, at: fmtDateTime(v.changed_at) })),
        h("ul", { class: "set-diff" }, ...Object.keys(v.after).map((k) => h("li", {},
          h("code", {}, k), ": ", h("del", {}, show(v.before[k])), " → ", h("ins", {}, show(v.after[k]))))))))
      : h("p", { class: "muted" }, tr("noHistory")));
    box.hidden = false;
    button.textContent = tr("hideHistory");
    button.setAttribute("aria-expanded", "true");
  }

  const show = (v) => (v === null || v === undefined ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v));

  // The hub answers in the UI's language (?lang=): "响应时限：必须大于 0". Next to the field, the
  // reason is enough; elsewhere the whole sentence.
  const reasonOnly = (message) => message.replace(/^[^：:]{1,60}[：:]\s*/, "");

  // -- errors next to the field --------------------------------------------------------------------
  function clearErrors(panel) {
    for (const el of panel.querySelectorAll("[aria-invalid=true]")) el.removeAttribute("aria-invalid");
    for (const el of panel.querySelectorAll(".field-error")) el.textContent = "";
  }

  /** Mark the element whose data-key is ``field`` (or the nearest key above it) and say why next to it. */
  function showError(panel, field, message) {
    let key = field;
    let el = null;
    while (key) {
      el = [...panel.querySelectorAll("[data-key]")].find((x) => x.dataset.key === key);
      if (el) break;
      key = key.includes(".") ? key.slice(0, key.lastIndexOf(".")) : "";
    }
    if (!el) return false;
    el.setAttribute("aria-invalid", "true");
    const slot = el.closest("[data-slot]") || el.parentElement;
    let note = slot.querySelector(":scope > .field-error");
    if (!note) {
      note = h("em", { class: "field-error", id: nextId("err") });
      slot.append(note);
    }
    note.textContent = message;
    el.setAttribute("aria-describedby", note.id);
    if (el.focus) el.focus();
    return true;
  }

  function fail(field, key, vars) {
    throw Object.assign(new Error(tr(key, vars)), { field });
  }

  function numberInput(key, value, label, { min = "0", step = "any" } = {}) {
    return h("input", { type: "number", min, step, inputmode: "decimal", value: value ?? "", "data-key": key,
      "aria-label": label, class: "num" });
  }

  function readMinutes(input, { optional = false, allowZero = false } = {}) {
    const raw = input.value.trim();
    if (raw === "") {
      if (optional) return null;
      fail(input.dataset.key, "e.required");
    }
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) fail(input.dataset.key, allowZero ? "e.nonNegative" : "e.positive");
    return seconds(n);
  }

  // -- categories ------------------------------------------------------------------------------------
  function buildCategories(body, sec) {
    const inUse = new Set(sec.in_use || []);
    const depts = (S.ref.departments || []).map((d) => d.code);
    const rows = h("tbody");
    const table = h("table", { class: "set-table" },
      h("thead", {}, h("tr", {}, ...["cat.code", "cat.zh", "cat.en", "cat.route", "cat.retired", ""].map((k) =>
        h("th", { scope: "col" }, k ? tr(k) : "")))), rows);

    function row(code, cat, isNew) {
      const codeCell = isNew
        ? h("input", { type: "text", value: code, maxlength: 40, "aria-label": tr("cat.code"), "data-role": "code", class: "code" })
        : h("code", { "data-role": "code" }, code);
      const tr_ = h("tr", { "data-code": code });
      const key = (k) => `categories.${code}${k ? "." + k : ""}`;
      const zh = h("input", { type: "text", value: cat.zh || "", maxlength: 50, "aria-label": `${tr("cat.zh")} ${code}`, "data-key": key("zh") });
      const en = h("input", { type: "text", value: cat.en || "", maxlength: 100, "aria-label": `${tr("cat.en")} ${code}`, "data-key": key("en") });
      const route = h("fieldset", { class: "set-checks", "data-key": key("route"), "data-slot": "" },
        h("legend", { class: "sr-only" }, `${tr("cat.route")} ${code}`),
        ...depts.map((d) => h("label", {}, h("input", { type: "checkbox", value: d, checked: (cat.route || []).includes(d) }), deptName(d))));
      const retired = h("input", { type: "checkbox", checked: !!cat.retired, "aria-label": `${tr("cat.retired")} ${code}`, "data-key": key("retired") });
      const used = inUse.has(code);
      const remove = h("button", { type: "button", class: "ghost small", disabled: used, title: used ? tr("cat.inUse") : null,
        "aria-label": `${tr("remove")} ${code}` }, tr("remove"));
      remove.addEventListener("click", () => tr_.remove());
      const keyed = (input) => input.addEventListener("input", () => {
        const c = input.value.trim();
        tr_.dataset.code = c;
        zh.dataset.key = `categories.${c}.zh`; en.dataset.key = `categories.${c}.en`;
        route.dataset.key = `categories.${c}.route`; retired.dataset.key = `categories.${c}.retired`;
        input.dataset.key = `categories.${c}`;
      });
      codeCell.dataset.key = `categories.${code}`;
      if (isNew) keyed(codeCell);
      tr_.append(h("td", { "data-slot": "" }, codeCell), h("td", { "data-slot": "" }, zh), h("td", { "data-slot": "" }, en),
        h("td", {}, route), h("td", { "data-slot": "" }, retired), h("td", {}, remove));
      return tr_;
    }
    for (const [code, cat] of Object.entries(sec.value)) rows.append(row(code, cat, false));
    const add = h("button", { type: "button" }, tr("cat.add"));
    add.addEventListener("click", () => {
      const r = row("", { zh: "", en: "", route: [] }, true);
      rows.append(r);
      r.querySelector("input").focus();
    });
    body.append(h("p", { class: "muted small" }, tr("cat.hint")),
      h("div", { class: "scroll", "data-key": "categories.list", "data-slot": "" }, table), add);

    return () => {
      const out = {};
      for (const r of rows.children) {
        const codeEl = r.querySelector("[data-role=code]");
        const code = (codeEl.value ?? codeEl.textContent).trim();
        if (!/^[a-z][a-z0-9_]{1,39}$/.test(code)) fail(`categories.${code}`, "e.code");
        if (code in out) fail(`categories.${code}`, "e.duplicate");
        const [zh, en] = r.querySelectorAll("input[type=text]:not(.code)");
        if (!zh.value.trim()) fail(zh.dataset.key, "e.required");
        if (!en.value.trim()) fail(en.dataset.key, "e.required");
        const routeSet = [...r.querySelectorAll("fieldset input:checked")].map((x) => x.value);
        const retired = r.querySelector("input[type=checkbox][data-key$='.retired']").checked;
        if (!retired && !routeSet.length) fail(`categories.${code}.route`, "e.route");
        out[code] = { zh: zh.value.trim(), en: en.value.trim(), route: routeSet, retired };
      }
      return out;
    };
  }

  // -- SLA: deadlines, overrides, ladder -------------------------------------------------------------
  function buildSla(body, sec) {
    const v = sec.value;
    // deadlines by priority
    const within = h("table", { class: "set-table" },
      h("caption", {}, tr("sla.within")),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, tr("sla.priority")), ...CLOCKS.map((c) => h("th", { scope: "col" }, tr(`sla.${c}`))))),
      h("tbody", {}, ...PRIORITIES.map((p) => h("tr", {}, h("th", { scope: "row", "data-key": `sla.within.${p}`, "data-slot": "" }, tr(`prio.${p}`)),
        ...CLOCKS.map((c) => h("td", { "data-slot": "" },
          numberInput(`sla.within.${p}.${c}`, minutes(v.within[p][c]), `${tr(`prio.${p}`)} ${tr(`sla.${c}`)}`)))))));
    const reviewId = nextId("review");
    const review = h("p", { class: "set-inline", "data-slot": "" }, h("label", { for: reviewId }, tr("sla.review")), " ",
      Object.assign(numberInput("sla.transfer_review_s", minutes(v.transfer_review_s), tr("sla.review")), { id: reviewId }));

    // overrides by department or category
    const overrides = h("tbody");
    const cats = Object.keys(S.sections.categories.value);
    function overrideRow(scope, code, prio, values) {
      const scopeSel = h("select", { "aria-label": tr("sla.scope") },
        h("option", { value: "department", selected: scope === "department" }, tr("sla.scopeDept")),
        h("option", { value: "category", selected: scope === "category" }, tr("sla.scopeCat")));
      const whichSel = h("select", { "aria-label": tr("sla.which") });
      const fill = () => {
        const list = scopeSel.value === "department" ? (S.ref.departments || []).map((d) => d.code) : cats;
        whichSel.replaceChildren(...list.map((c) => h("option", { value: c, selected: c === code },
          scopeSel.value === "department" ? deptName(c) : catName(c))));
      };
      fill();
      scopeSel.addEventListener("change", fill);
      const prioSel = h("select", { "aria-label": tr("sla.priority") },
        ...PRIORITIES.map((p) => h("option", { value: p, selected: p === prio }, tr(`prio.${p}`))));
      const inputs = CLOCKS.map((c) => numberInput("", minutes(values[c]), tr(`sla.${c}`)));
      const rekey = () => inputs.forEach((inp, i) => {
        inp.dataset.key = `sla.${scopeSel.value}.${whichSel.value}.${prioSel.value}.${CLOCKS[i]}`;
      });
      for (const sel of [scopeSel, whichSel, prioSel]) sel.addEventListener("change", rekey);
      rekey();
      const remove = h("button", { type: "button", class: "ghost small" }, tr("remove"));
      const r = h("tr", {}, h("td", {}, scopeSel), h("td", { "data-slot": "" }, whichSel), h("td", {}, prioSel),
        ...inputs.map((inp) => h("td", { "data-slot": "" }, inp)), h("td", {}, remove));
      whichSel.dataset.key = `sla.${scope}.${code}`;
      remove.addEventListener("click", () => r.remove());
      r._read = () => ({ scope: scopeSel.value, code: whichSel.value, prio: prioSel.value, inputs });
      return r;
    }
    for (const scope of ["department", "category"]) {
      for (const [code, byPrio] of Object.entries(v[scope] || {})) {
        for (const [prio, values] of Object.entries(byPrio)) overrides.append(overrideRow(scope, code, prio, values || {}));
      }
    }
    const addOverride = h("button", { type: "button" }, tr("sla.addOverride"));
    addOverride.addEventListener("click", () => overrides.append(overrideRow("department", (S.ref.departments[0] || {}).code, "urgent", {})));
    const overridesTable = h("table", { class: "set-table" }, h("caption", {}, tr("sla.overrides")),
      h("thead", {}, h("tr", {}, ...["sla.scope", "sla.which", "sla.priority", "sla.ack", "sla.arrive", "sla.resolve", ""].map((k) =>
        h("th", { scope: "col" }, k ? tr(k) : "")))), overrides);

    // the ladder per clock
    const ladders = {};
    const ladderBox = h("div", { class: "set-ladders" }, h("h3", {}, tr("sla.ladder")));
    for (const kind of KINDS) {
      const rows = h("tbody");
      ladders[kind] = rows;
      const renumber = () => [...rows.children].forEach((r, i) => r._renumber(i));
      function levelRow(rung) {
        const label = h("th", { scope: "row" });
        const after = numberInput("", minutes(rung.after_s), tr("sla.after"));
        const notify = h("fieldset", { class: "set-checks", "data-slot": "" }, h("legend", { class: "sr-only" }, tr("sla.notify")),
          ...AUDIENCES.map((a) => h("label", {}, h("input", { type: "checkbox", value: a, checked: (rung.notify || []).includes(a) }), tr(`aud.${a}`))));
        const every = numberInput("", minutes(rung.repeat_every_s ?? 300), tr("sla.every"));
        const count = numberInput("", rung.repeat_count ?? 0, tr("sla.count"), { step: "1" });
        const remove = h("button", { type: "button", class: "ghost small" }, tr("remove"));
        const r = h("tr", {}, label, h("td", { "data-slot": "" }, after), h("td", {}, notify), h("td", { "data-slot": "" }, every),
          h("td", { "data-slot": "" }, count), h("td", {}, remove));
        remove.addEventListener("click", () => { if (rows.children.length > 1) { r.remove(); renumber(); } });
        r._renumber = (i) => {
          label.textContent = lang() === "en" ? `Level ${i + 1}` : (LEVELS_ZH[i] || `${i + 1}级督办`);
          const base = `sla.ladder.${kind}.${i}`;
          after.dataset.key = `${base}.after_s`; notify.dataset.key = `${base}.notify`;
          every.dataset.key = `${base}.repeat_every_s`; count.dataset.key = `${base}.repeat_count`;
          for (const x of [after, every, count]) x.setAttribute("aria-label", `${label.textContent} ${x === after ? tr("sla.after") : x === every ? tr("sla.every") : tr("sla.count")}`);
        };
        r._read = () => ({ after, notify, every, count });
        return r;
      }
      for (const rung of v.ladder[kind] || []) rows.append(levelRow(rung));
      renumber();
      const add = h("button", { type: "button" }, tr("sla.addLevel"));
      add.addEventListener("click", () => {
        if (rows.children.length >= 10) return;
        const last = [...rows.children].pop();
        const prev = last ? Number(last._read().after.value || 0) * 60 : 0;
        rows.append(levelRow({ after_s: prev + 600, notify: ["operators"] }));
        renumber();
      });
      ladderBox.append(h("div", { class: "set-ladder", "data-key": `sla.ladder.${kind}`, "data-slot": "" },
        h("div", { class: "scroll" }, h("table", { class: "set-table", "data-kind": kind },
          h("caption", {}, tr(`kind.${kind}`)),
          h("thead", {}, h("tr", {}, ...["sla.level", "sla.after", "sla.notify", "sla.every", "sla.count", ""].map((k) =>
            h("th", { scope: "col" }, k ? tr(k) : "")))), rows)), add));
    }
    body.append(h("div", { class: "scroll" }, within), review, h("div", { class: "scroll" }, overridesTable), addOverride, ladderBox);

    return () => {
      const out = { transfer_review_s: readMinutes(review.querySelector("input")), within: {}, department: {}, category: {}, ladder: {} };
      for (const p of PRIORITIES) {
        const w = {};
        for (const c of CLOCKS) w[c] = readMinutes(within.querySelector(`[data-key='sla.within.${p}.${c}']`));
        if (!(w.ack <= w.arrive && w.arrive <= w.resolve)) fail(`sla.within.${p}`, "e.order");
        out.within[p] = w;
      }
      for (const r of overrides.children) {
        const { scope, code, prio, inputs } = r._read();
        const values = {};
        inputs.forEach((inp, i) => { const s = readMinutes(inp, { optional: true }); if (s !== null) values[CLOCKS[i]] = s; });
        if (!Object.keys(values).length) continue;
        ((out[scope][code] ||= {})[prio] = values);
      }
      for (const kind of KINDS) {
        let previous = -1;
        out.ladder[kind] = [...ladders[kind].children].map((r) => {
          const { after, notify, every, count } = r._read();
          const after_s = readMinutes(after, { allowZero: true });
          if (after_s < previous) fail(after.dataset.key, "e.ladder");
          previous = after_s;
          const who = [...notify.querySelectorAll("input:checked")].map((x) => x.value);
          if (!who.length) fail(notify.dataset.key, "e.audience");
          const repeat_every_s = readMinutes(every);
          if (repeat_every_s < 10) fail(every.dataset.key, "e.every");
          const n = Number(count.value);
          if (!Number.isInteger(n) || n < 0 || n > 20) fail(count.dataset.key, "e.count");
          return { after_s, notify: who, repeat_every_s, repeat_count: n };
        });
      }
      return out;
    };
  }

  // -- evaluation weights ----------------------------------------------------------------------------
  function buildEvaluation(body, sec) {
    const v = sec.value;
    const rows = h("tbody");
    const presetSel = h("select", { id: nextId("preset"), "data-key": "evaluation.preset" });
    const refreshPresets = () => {
      const chosen = presetSel.value || v.preset;
      presetSel.replaceChildren(...[...rows.children].map((r) => r._name()).filter(Boolean).map((n) =>
        h("option", { value: n, selected: n === chosen }, n)));
    };
    function presetRow(name, weights, isNew) {
      const nameEl = isNew
        ? h("input", { type: "text", value: name, maxlength: 50, "aria-label": tr("ev.newName"), class: "code" })
        : h("code", {}, name);
      const inputs = RATES.map((rate) => numberInput(`evaluation.presets.${name}.${rate}`,
        String(Math.round((weights[rate] || 0) * 10000) / 100), `${name} ${tr(`ev.${rate}`)} %`, { step: "any" }));
      const total = h("output", { class: "set-total", "aria-live": "polite" });
      const r = h("tr", { "data-preset": name });
      const update = () => {
        const sum = Math.round(inputs.reduce((a, x) => a + (Number(x.value) || 0), 0) * 100) / 100;
        total.textContent = `${sum}%`;
        total.classList.toggle("bad", sum !== 100);
        total.setAttribute("aria-label", `${tr("ev.total")} ${sum}%`);
      };
      inputs.forEach((x) => x.addEventListener("input", update));
      update();
      const rekey = () => {
        const n = r._name();
        r.dataset.preset = n;
        nameEl.dataset.key = `evaluation.presets.${n}`;
        inputs.forEach((x, i) => { x.dataset.key = `evaluation.presets.${n}.${RATES[i]}`; x.setAttribute("aria-label", `${n} ${tr(`ev.${RATES[i]}`)} %`); });
        refreshPresets();
      };
      r._name = () => (nameEl.value ?? nameEl.textContent).trim();
      if (isNew) nameEl.addEventListener("input", rekey);
      nameEl.dataset.key = `evaluation.presets.${name}`;
      const remove = h("button", { type: "button", class: "ghost small", "aria-label": `${tr("remove")} ${name}` }, tr("remove"));
      remove.addEventListener("click", () => { if (rows.children.length > 1) { r.remove(); refreshPresets(); } });
      r.append(h("th", { scope: "row", "data-slot": "" }, nameEl), ...inputs.map((x) => h("td", { "data-slot": "" }, x, "%")),
        h("td", { "data-slot": "", "data-key": `evaluation.presets.${name}` }, total), h("td", {}, remove));
      r._read = () => ({ inputs, total });
      return r;
    }
    for (const [name, weights] of Object.entries(v.presets)) rows.append(presetRow(name, weights, false));
    refreshPresets();
    const add = h("button", { type: "button" }, tr("ev.addPreset"));
    add.addEventListener("click", () => {
      const r = presetRow("", {}, true);
      rows.append(r);
      r.querySelector("input").focus();
    });
    const table = h("table", { class: "set-table" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, tr("ev.name")), ...RATES.map((rate) => h("th", { scope: "col" }, tr(`ev.${rate}`))),
        h("th", { scope: "col" }, tr("ev.total")), h("th", { scope: "col" }, ""))), rows);
    body.append(h("p", { class: "set-inline", "data-slot": "" }, h("label", { for: presetSel.id }, tr("ev.preset")), " ", presetSel),
      h("div", { class: "scroll" }, table), add);

    return () => {
      const presets = {};
      for (const r of rows.children) {
        const name = r._name();
        if (!/^[a-z][a-z0-9_]{0,49}$/.test(name)) fail(`evaluation.presets.${name}`, "e.code");
        if (name in presets) fail(`evaluation.presets.${name}`, "e.duplicate");
        const { inputs } = r._read();
        const weights = {};
        let sum = 0;
        inputs.forEach((x, i) => {
          const n = Number(x.value || 0);
          if (!Number.isFinite(n) || n < 0 || n > 100) fail(x.dataset.key, "e.nonNegative");
          sum += n;
          if (n) weights[RATES[i]] = Math.round(n * 100) / 10000;
        });
        if (Math.abs(sum - 100) > 1e-6) fail(`evaluation.presets.${name}`, "e.sum", { n: Math.round(sum * 100) / 100 });
        presets[name] = weights;
      }
      return { preset: presetSel.value, presets };
    };
  }
}

/** Used when no ``api`` is given: the same contract over fetch, asking for the UI's language. */
async function ownApi(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json", "Accept-Language": document.documentElement.lang || "zh-CN" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw { code: "network", message: String(e && e.message), field: null, status: 0 };
  }
  if (res.status === 401) location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw { code: data.code || "http", message: data.message || res.statusText, field: data.field || null, status: res.status };
  return data;
}

/** The tab's own stylesheet, once per page (the console's page need not list it). */
function ensureStyles() {
  if (document.querySelector("link[data-settings-css]")) return;
  document.head.append(h("link", { rel: "stylesheet", href: "/admin/settings.css", "data-settings-css": "" }));
}
