// The admin console (系统管理, /admin/): townships and grids, stations and township units, accounts (with the bulk
// import), integrations, the settings tab (mounted from ./settings.js) and the admin log. Every change goes through
// the admin REST API (/api/v1/admin/…), which validates it, records it in the admin log and tells every node.
//
// The settings module's contract (kept stable): `mount(container, ctx)` with ctx = { api, t, lang }, where
// api(path, { method, body }) resolves to the JSON answer or throws { code, message, field, status }, t(key, vars)
// looks a UI string up (zh-CN by default), and lang() is "zh-CN" or "en".
import { applyI18n, lang, setLang, t } from "/shared/i18n.js";
import { h } from "/shared/dom.js";
import { fmtDateTime } from "/shared/format.js";
import "/admin/strings.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["county", "forces", "users", "integrations", "settings", "log"];
const ROLES = ["operator", "liaison", "supervisor", "admin", "leader", "department_head", "grid_worker"];
// The admin log's actions, as the hub's catalogue (dispatch/store/adminlog.py ACTIONS; tests/test_admin_log.py).
const ACTIONS = ["township.add", "township.update", "grid.add", "grid.update", "station.add", "station.remove",
  "unit.add", "unit.update", "unit.retire", "user.add", "user.update", "user.disable", "user.enable", "user.passwd",
  "integration.add", "integration.disable", "integration.enable", "integration.rotate",
  "settings.categories", "settings.sla", "settings.evaluation", "privacy.erase", "privacy.rechain"];
/** An admin-log action in words (its code where the table has none, e.g. an action added later). */
function actionName(a) {
  const key = `act.${a}`;
  const s = t(key);
  return s && s !== key ? s : a;
}
const S = { me: null, county: [], departments: [], selected: null, users: { offset: 0, limit: 50 }, log: { offset: 0, limit: 50 } };
const loaded = new Set();

/** A REST call: the JSON answer, or a thrown { code, message, field, status } (status 0: no answer). */
export async function api(path, { method = "GET", body, raw, type } = {}) {
  const headers = { Accept: "application/json" };
  let payload;
  if (raw !== undefined) { payload = raw; headers["Content-Type"] = type || "application/octet-stream"; }
  else if (body !== undefined) { payload = JSON.stringify(body); headers["Content-Type"] = "application/json"; }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  } catch (e) {
    throw { code: "network", message: t("e.network"), field: null, status: 0 };
  }
  if (res.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw { code: "unauthenticated", message: "login required", field: null, status: 401 };
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw { ...data, code: data.code || "error", message: data.message || res.statusText, field: data.field || null, status: res.status };
  return data;
}

export const ctx = Object.freeze({ api, t: (key, vars = {}) => t(key, vars), lang });

// -- small builders ------------------------------------------------------------------------------------------

const nameOf = (o) => (o ? (lang() === "en" ? o.name_en || o.name_zh : o.name_zh || o.name_en) : "");
const depName = (code) => nameOf(S.departments.find((d) => d.code === code)) || code;
const twName = (code) => nameOf(S.county.find((tw) => tw.code === code)) || code || t("u.none");

function toast(text, bad = false) {
  const el = $("toast");
  el.textContent = text;
  el.className = bad ? "toast bad" : "toast";
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

let uid = 0;
/** One labelled control: { name, label, type: text|select|textarea|checkbox|file|password, options, value, required }. */
function control(f) {
  const id = `f${++uid}`;
  let input;
  if (f.type === "select") {
    input = h("select", { id, name: f.name }, (f.options || []).map(([value, text]) => h("option", { value, selected: String(value) === String(f.value ?? "") }, text)));
  } else if (f.type === "textarea") {
    input = h("textarea", { id, name: f.name, class: f.class || "geo", spellcheck: "false" }, f.value || "");
  } else if (f.type === "checkbox") {
    input = h("input", { id, name: f.name, type: "checkbox", checked: !!f.value });
    return h("label", { class: "check", for: id }, input, f.label);
  } else {
    input = h("input", { id, name: f.name, type: f.type || "text", value: f.value ?? "", required: f.required, autocomplete: "off",
      maxlength: f.max || null, accept: f.accept || null });
  }
  return h("label", { for: id }, f.label, input);
}

/** A form of controls that submits to `run(values, form)`; an error names its field (aria-invalid) and shows. */
function form(fields, submitLabel, run, extra = []) {
  const error = h("p", { class: "form-error", role: "alert" });
  const button = h("button", { type: "submit", class: "primary" }, submitLabel);
  const el = h("form", { class: "row", novalidate: true }, fields.map((f) => (f instanceof Node ? f : control(f))), extra, button, error);
  el.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    for (const x of el.querySelectorAll("[aria-invalid]")) x.removeAttribute("aria-invalid");
    const values = {};
    for (const x of el.elements) {
      if (!x.name) continue;
      if (x.type === "checkbox") {
        if (x.dataset.group) (values[x.dataset.group] ||= []).push(...(x.checked ? [x.name] : []));
        else values[x.name] = x.checked;
      } else if (x.type === "file") values[x.name] = x.files[0] || null;
      else values[x.name] = x.value.trim();
    }
    for (const f of fields) {
      if (f.required && !values[f.name]) return fail(el, error, { field: f.name, message: t("e.required") });
    }
    button.disabled = true;
    try {
      await run(values, el);
    } catch (e) {
      fail(el, error, e);
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

function fail(el, error, e) {
  error.textContent = e.message || String(e);
  const field = e.field && el.querySelector(`[name="${CSS.escape(e.field)}"]`);
  if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
}

const panel = (title, ...children) => h("section", { class: "panel" }, title ? h("h2", {}, title) : null, children);
const table = (heads, rows) => h("div", { class: "scroll" }, h("table", { class: "grid" },
  h("thead", {}, h("tr", {}, heads.map((x) => h("th", { scope: "col" }, x)))), h("tbody", {}, rows)));
const optional = (list, allLabel = "") => [["", allLabel], ...list];
const townshipOptions = () => S.county.map((tw) => [tw.code, `${tw.name_zh} ${tw.code}`]);
const departmentOptions = () => S.departments.map((d) => [d.code, nameOf(d)]);
const geo = (text, field = "boundary") => {
  if (!text) return undefined;
  try { return JSON.parse(text); } catch { throw { field, message: `${field}: not JSON` }; }
};

async function loadCounty() {
  const [county, ref] = await Promise.all([api("/api/v1/admin/county"), S.departments.length ? null : api("/api/v1/reference")]);
  S.county = county.townships;
  if (ref) S.departments = ref.departments;
}

async function refresh(view) {
  await loadCounty();
  await render(view);
}

// -- 镇街与网格 ----------------------------------------------------------------------------------------------

function renderCounty(root) {
  const rows = S.county.map((tw) => h("tr", { class: S.selected === tw.code ? "selected" : null },
    h("td", {}, tw.code), h("td", {}, tw.name_zh), h("td", {}, tw.name_en), h("td", {}, tw.stations.length),
    h("td", {}, tw.grids.length), h("td", {}, tw.units.filter((u) => !u.retired_at).length), h("td", {}, tw.users),
    h("td", {}, tw.boundary ? t("c.hasBoundary") : t("c.noBoundary")),
    h("td", {}, h("button", { type: "button", class: "small", onclick: () => { S.selected = tw.code; render("county"); } }, t("c.select")))));
  const stations = h("fieldset", {}, h("legend", {}, t("c.stations")),
    S.departments.map((d) => { const id = `st-${d.code}`; return h("label", { for: id }, h("input", { id, type: "checkbox", name: d.code, checked: true, dataset: { group: "stations" } }), nameOf(d)); }));
  const add = form([
    { name: "code", label: t("c.code"), required: true, max: 32 },
    { name: "name_zh", label: t("c.nameZh"), required: true, max: 50 },
    { name: "name_en", label: t("c.nameEn"), required: true, max: 50 },
    { name: "boundary", label: t("c.boundary"), type: "textarea" },
  ], t("c.add"), async (v, el) => {
    await api("/api/v1/admin/townships", { method: "POST", body: { code: v.code, name_zh: v.name_zh, name_en: v.name_en, boundary: geo(v.boundary), stations: v.stations || [] } });
    S.selected = v.code;
    toast(t("c.created", { what: v.name_zh }));
    el.reset();
    await refresh("county");
  }, [stations]);
  root.replaceChildren(
    panel(t("c.townships"), table([t("c.code"), t("c.nameZh"), t("c.nameEn"), t("c.stations"), t("c.grids"), t("c.units"), t("c.users"), t("c.boundary"), ""], rows)),
    panel(t("c.add"), add),
  );
  const tw = S.county.find((x) => x.code === S.selected);
  if (!tw) return;
  const rename = form([
    { name: "name_zh", label: t("c.nameZh"), value: tw.name_zh, max: 50 },
    { name: "name_en", label: t("c.nameEn"), value: tw.name_en, max: 50 },
    { name: "boundary", label: t("c.boundary"), type: "textarea" },
  ], t("c.save"), async (v) => {
    const body = { name_zh: v.name_zh, name_en: v.name_en };
    if (v.boundary) body.boundary = geo(v.boundary);
    await api(`/api/v1/admin/townships/${encodeURIComponent(tw.code)}`, { method: "PATCH", body });
    toast(t("c.saved"));
    await refresh("county");
  });
  const grids = tw.grids.map((g) => h("tr", {}, h("td", {}, g.id), h("td", {}, g.name), h("td", {}, g.boundary ? t("c.hasBoundary") : t("c.noBoundary"))));
  const addGrid = form([
    { name: "name", label: t("c.gridName"), required: true, max: 50 },
    { name: "boundary", label: t("c.boundary"), type: "textarea" },
  ], t("c.addGrid"), async (v, el) => {
    await api(`/api/v1/admin/townships/${encodeURIComponent(tw.code)}/grids`, { method: "POST", body: { name: v.name, boundary: geo(v.boundary) } });
    toast(t("c.created", { what: v.name }));
    el.reset();
    await refresh("county");
  });
  const renameGrid = form([
    { name: "grid", label: t("c.grid"), type: "select", options: tw.grids.map((g) => [g.id, g.name]) },
    { name: "name", label: t("c.newName"), required: true, max: 50 },
  ], t("c.rename"), async (v) => {
    await api(`/api/v1/admin/grids/${Number(v.grid)}`, { method: "PATCH", body: { name: v.name } });
    toast(t("c.saved"));
    await refresh("county");
  });
  root.append(panel(`${tw.name_zh}（${tw.code}）`, rename, h("h3", {}, t("c.detail", { name: tw.name_zh })),
    table(["ID", t("c.gridName"), t("c.boundary")], grids), h("h3", {}, t("c.addGrid")), addGrid,
    tw.grids.length ? [h("h3", {}, t("c.rename")), renameGrid] : null));
}

// -- 部门与力量 ----------------------------------------------------------------------------------------------

function renderForces(root) {
  if (!S.selected || !S.county.some((x) => x.code === S.selected)) S.selected = S.county[0]?.code || null;
  const tw = S.county.find((x) => x.code === S.selected);
  const pick = control({ name: "township", label: t("f.township"), type: "select", options: townshipOptions(), value: S.selected });
  pick.querySelector("select").addEventListener("change", (ev) => { S.selected = ev.target.value; render("forces"); });
  root.replaceChildren(panel(null, pick));
  if (!tw) return;
  const base = `/api/v1/admin/townships/${encodeURIComponent(tw.code)}`;
  const act = (fn) => async () => {
    try { await fn(); await refresh("forces"); } catch (e) { toast(e.message, true); }
  };
  const stations = S.departments.map((d) => {
    const on = tw.stations.includes(d.code);
    return h("tr", {}, h("td", {}, nameOf(d)), h("td", {}, d.code), h("td", {}, on ? t("f.stationed") : t("f.notStationed")),
      h("td", {}, on
        ? h("button", { type: "button", class: "small danger", onclick: act(async () => {
          if (!confirm(t("f.confirmUnstation", { name: nameOf(d) }))) return;
          await api(`${base}/stations/${d.code}`, { method: "DELETE" });
          toast(t("c.saved"));
        }) }, t("f.unstation"))
        : h("button", { type: "button", class: "small", onclick: act(async () => {
          await api(`${base}/stations`, { method: "POST", body: { department: d.code } });
          toast(t("c.saved"));
        }) }, t("f.station"))));
  });
  const units = tw.units.map((u) => h("tr", { class: u.retired_at ? "retired" : null }, h("td", {}, u.target), h("td", {}, u.name_zh), h("td", {}, u.name_en),
    h("td", {}, u.retired_at ? t("f.retired") : t("f.active")),
    h("td", {}, u.retired_at ? null : h("button", { type: "button", class: "small danger", onclick: act(async () => {
      if (!confirm(t("f.confirmRetire", { name: u.name_zh }))) return;
      await api(`/api/v1/admin/units/${u.id}/retire`, { method: "POST" });
      toast(t("c.saved"));
    }) }, t("f.retire")))));
  const addUnit = form([
    { name: "name_zh", label: t("c.nameZh"), required: true, max: 50 },
    { name: "name_en", label: t("c.nameEn"), required: true, max: 50 },
  ], t("f.addUnit"), async (v, el) => {
    await api(`${base}/units`, { method: "POST", body: { name_zh: v.name_zh, name_en: v.name_en } });
    toast(t("c.created", { what: v.name_zh }));
    el.reset();
    await refresh("forces");
  });
  const active = tw.units.filter((u) => !u.retired_at);
  const renameUnit = form([
    { name: "unit", label: t("c.units"), type: "select", options: active.map((u) => [u.id, u.name_zh]) },
    { name: "name_zh", label: t("c.nameZh"), max: 50 },
    { name: "name_en", label: t("c.nameEn"), max: 50 },
  ], t("c.rename"), async (v) => {
    await api(`/api/v1/admin/units/${Number(v.unit)}`, { method: "PATCH", body: { name_zh: v.name_zh || undefined, name_en: v.name_en || undefined } });
    toast(t("c.saved"));
    await refresh("forces");
  });
  root.append(
    panel(`${tw.name_zh} · ${t("c.stations")}`, table([t("u.department"), t("c.code"), t("f.state"), ""], stations)),
    panel(`${tw.name_zh} · ${t("c.units")}`, table(["", t("c.nameZh"), t("c.nameEn"), t("f.state"), ""], units),
      h("h3", {}, t("f.addUnit")), addUnit, active.length ? [h("h3", {}, t("c.rename")), renameUnit] : null),
  );
}

// -- 账号 ----------------------------------------------------------------------------------------------------

function placeFields(u = {}) {
  const units = S.county.flatMap((tw) => tw.units.filter((x) => !x.retired_at).map((x) => [x.id, `${tw.name_zh}·${x.name_zh}`]));
  const grids = S.county.flatMap((tw) => tw.grids.map((g) => [g.id, `${tw.name_zh}·${g.name}`]));
  return [
    { name: "role", label: t("u.role"), type: "select", options: ROLES.map((r) => [r, t(`role.${r}`)]), value: u.role || "operator" },
    { name: "township", label: t("u.township"), type: "select", options: optional(townshipOptions(), t("u.none")), value: u.township || "" },
    { name: "department", label: t("u.department"), type: "select", options: optional(departmentOptions(), t("u.none")), value: u.department || "" },
    { name: "unit", label: t("u.unit"), type: "select", options: optional(units, t("u.none")), value: u.unit_id || "" },
    { name: "grid", label: t("u.grid"), type: "select", options: optional(grids, t("u.none")), value: u.grid_id || "" },
    { name: "phone", label: t("u.phone"), value: u.phone || "", max: 20 },
    { name: "team_lead", label: t("u.teamLead"), type: "checkbox", value: u.team_lead },
  ];
}

function showSecret(root, text, secret) {
  const box = h("section", { class: "panel", role: "status" }, h("p", {}, text), h("p", { class: "secret" }, secret));
  root.prepend(box);
  box.scrollIntoView({ block: "nearest" });
}

async function renderUsers(root) {
  const q = S.users;
  const params = new URLSearchParams({ limit: q.limit, offset: q.offset });
  for (const k of ["role", "township", "department", "q"]) if (q[k]) params.set(k, q[k]);
  const data = await api(`/api/v1/admin/users?${params}`);
  const filters = form([
    { name: "role", label: t("u.role"), type: "select", options: optional(ROLES.map((r) => [r, t(`role.${r}`)]), t("u.all")), value: q.role },
    { name: "township", label: t("u.township"), type: "select", options: optional(townshipOptions(), t("u.all")), value: q.township },
    { name: "department", label: t("u.department"), type: "select", options: optional(departmentOptions(), t("u.all")), value: q.department },
    { name: "q", label: t("u.q"), type: "search", value: q.q, max: 64 },
  ], t("u.search"), async (v) => { Object.assign(S.users, v, { offset: 0 }); await render("users"); });
  const act = (fn) => async () => { try { await fn(); } catch (e) { toast(e.message, true); } };
  const rows = data.users.map((u) => h("tr", { class: u.disabled ? "retired" : null },
    h("td", {}, u.username), h("td", {}, u.display_name), h("td", {}, t(`role.${u.role}`)), h("td", {}, u.township ? twName(u.township) : t("u.none")),
    h("td", {}, u.department ? depName(u.department) : u.unit_name || u.grid_name || t("u.none")),
    h("td", {}, u.phone || t("u.none")), h("td", {}, u.team_lead ? "✓" : ""), h("td", {}, u.disabled ? t("u.disabled") : t("u.enabled")),
    h("td", {}, h("div", { class: "actions" },
      h("button", { type: "button", class: "small", onclick: () => editUser(root, u) }, t("u.change")),
      h("button", { type: "button", class: "small", onclick: act(async () => {
        if (!confirm(t("u.confirmReset", { u: u.username }))) return;
        const r = await api(`/api/v1/admin/users/${encodeURIComponent(u.username)}/password`, { method: "POST", body: {} });
        showSecret(root, t("u.generated", { u: u.username }), r.password);
      }) }, t("u.reset")),
      u.disabled
        ? h("button", { type: "button", class: "small", onclick: act(async () => { await api(`/api/v1/admin/users/${encodeURIComponent(u.username)}/enable`, { method: "POST" }); await render("users"); }) }, t("u.enable"))
        : h("button", { type: "button", class: "small danger", onclick: act(async () => {
          if (!confirm(t("u.confirmDisable", { u: u.username }))) return;
          await api(`/api/v1/admin/users/${encodeURIComponent(u.username)}/disable`, { method: "POST" });
          await render("users");
        }) }, t("u.disable"))))));
  const pager = h("div", { class: "pager" }, h("span", { "aria-live": "polite" }, t("u.total", { n: data.total })),
    h("button", { type: "button", class: "small", disabled: q.offset === 0, onclick: () => { q.offset = Math.max(0, q.offset - q.limit); render("users"); } }, t("u.prev")),
    h("button", { type: "button", class: "small", disabled: q.offset + q.limit >= data.total, onclick: () => { q.offset += q.limit; render("users"); } }, t("u.next")));
  const add = form([
    { name: "username", label: t("u.username"), required: true, max: 64 },
    { name: "display_name", label: t("u.name"), required: true, max: 50 },
    ...placeFields(),
    { name: "password", label: t("u.password"), type: "password", max: 200 },
  ], t("u.add"), async (v, el) => {
    const body = { username: v.username, display_name: v.display_name, role: v.role, team_lead: v.team_lead };
    for (const k of ["township", "department", "unit", "grid", "phone", "password"]) if (v[k]) body[k] = v[k];
    const r = await api("/api/v1/admin/users", { method: "POST", body });
    el.reset();
    await render("users");
    toast(t("c.created", { what: v.username }));
    if (r.password) showSecret(root, t("u.generated", { u: v.username }), r.password);
  });
  root.replaceChildren(
    panel(t("u.filters"), filters),
    panel(null, table([t("u.username"), t("u.name"), t("u.role"), t("u.township"), `${t("u.department")}/${t("u.unit")}/${t("u.grid")}`, t("u.phone"), t("u.teamLead"), t("u.state"), ""], rows), pager),
    panel(t("u.add"), add),
    importPanel(),
  );
}

function editUser(root, u) {
  const edit = form([{ name: "display_name", label: t("u.name"), value: u.display_name, max: 50 }, ...placeFields(u)],
    t("c.save"), async (v) => {
      const body = { display_name: v.display_name, role: v.role, team_lead: v.team_lead };
      for (const k of ["township", "department", "unit", "grid", "phone"]) body[k] = v[k] || "";
      await api(`/api/v1/admin/users/${encodeURIComponent(u.username)}`, { method: "PATCH", body });
      toast(t("c.saved"));
      await render("users");
    }, [h("button", { type: "button", onclick: () => box.remove() }, t("u.cancel"))]);
  const box = panel(t("u.edit", { u: u.username }), edit);
  root.querySelector(".edit-user")?.remove();
  box.classList.add("edit-user");
  root.prepend(box);
  box.querySelector("input, select")?.focus();
}

function importPanel() {
  const result = h("div", { "aria-live": "polite" });
  let file = null;
  const commit = h("button", { type: "button", class: "primary", disabled: true }, t("i.commit"));
  const send = (dry) => api(`/api/v1/admin/users/import${dry ? "?dry_run=1" : ""}`, { method: "POST", raw: file, type: file.type || "application/octet-stream" });
  const preview = form([{ name: "file", label: t("i.file"), type: "file", accept: ".xlsx,.csv" }], t("i.preview"), async (v) => {
    file = v.file;
    commit.disabled = true;
    if (!file) throw { field: "file", message: t("i.noFile") };
    const r = await send(true);
    showReport(result, r);
    commit.disabled = !r.ok;
  }, [commit]);
  commit.addEventListener("click", async () => {
    commit.disabled = true;
    try {
      const r = await send(false);
      const children = [h("p", { class: "ok-text" }, t("i.done", { n: r.created }))];
      if (r.passwords_xlsx) {
        const bytes = Uint8Array.from(atob(r.passwords_xlsx), (c) => c.charCodeAt(0));
        const url = URL.createObjectURL(new Blob([bytes], { type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" }));
        children.push(h("a", { class: "btn", href: url, download: "initial-passwords.xlsx" }, t("i.download")));
      }
      result.replaceChildren(...children);
      await loadCounty();
    } catch (e) {
      if (e.report) showReport(result, e.report);
      else result.replaceChildren(h("p", { class: "bad-text", role: "alert" }, e.message));
    }
  });
  return panel(t("i.title"), h("p", {}, h("a", { class: "btn", href: "/api/v1/admin/users/import/template.xlsx", download: "users-template.xlsx" }, t("i.template"))), preview, result);
}

function showReport(root, r) {
  const problems = new Map();
  for (const p of r.problems) (problems.get(p.row) || problems.set(p.row, []).get(p.row)).push(`${p.field}: ${p.message}`);
  const rows = r.rows.map((x) => h("tr", { class: x.ok ? null : "bad" }, h("td", {}, x.row), h("td", {}, x.username), h("td", {}, x.name),
    h("td", {}, x.role), h("td", {}, x.township || ""), h("td", {}, x.department || x.unit || x.grid || ""),
    h("td", {}, (problems.get(x.row) || []).map((m) => h("div", {}, m)))));
  const header = [...problems.keys()].filter((n) => !r.rows.some((x) => x.row === n)).map((n) => h("p", { class: "bad-text" }, `${t("i.row")} ${n}: ${problems.get(n).join("; ")}`));
  root.replaceChildren(
    h("p", { class: r.ok ? "ok-text" : "bad-text", role: r.ok ? null : "alert" }, r.ok ? t("i.ok", { n: r.rows.length }) : t("i.bad", { bad: r.error_rows, n: r.rows.length })),
    header, table([t("i.row"), t("u.username"), t("u.name"), t("u.role"), t("u.township"), `${t("u.department")}/${t("u.unit")}/${t("u.grid")}`, t("i.problems")], rows));
}

// -- 接入 ----------------------------------------------------------------------------------------------------

async function renderIntegrations(root) {
  const data = await api("/api/v1/admin/integrations");
  const act = (fn) => async () => { try { await fn(); } catch (e) { toast(e.message, true); } };
  const rows = data.integrations.map((i) => h("tr", { class: i.enabled ? null : "retired" }, h("td", {}, i.name), h("td", {}, i.kind), h("td", {}, i.display_name),
    h("td", {}, i.township ? twName(i.township) : t("u.none")), h("td", {}, i.enabled ? t("n.enabled") : t("u.disabled")),
    h("td", {}, h("div", { class: "actions" },
      h("button", { type: "button", class: "small", onclick: act(async () => {
        const r = await api(`/api/v1/admin/integrations/${i.id}/rotate`, { method: "POST" });
        await render("integrations");
        showSecret(root, t("n.credential", { name: i.name }), r.api_key || r.secret);
      }) }, t("n.rotate")),
      h("button", { type: "button", class: i.enabled ? "small danger" : "small", onclick: act(async () => {
        await api(`/api/v1/admin/integrations/${i.id}/${i.enabled ? "disable" : "enable"}`, { method: "POST" });
        await render("integrations");
      }) }, i.enabled ? t("u.disable") : t("u.enable"))))));
  const add = form([
    { name: "kind", label: t("n.kind"), type: "select", options: [["open311", "Open311"], ["hotline", "12345"]] },
    { name: "name", label: t("n.name"), required: true, max: 40 },
    { name: "display_name", label: t("n.display"), required: true, max: 50 },
    { name: "township", label: t("n.township"), type: "select", options: optional(townshipOptions(), t("u.none")) },
  ], t("n.add"), async (v, el) => {
    const r = await api("/api/v1/admin/integrations", { method: "POST", body: { kind: v.kind, name: v.name, display_name: v.display_name, township: v.township || null } });
    el.reset();
    await render("integrations");
    showSecret(root, t("n.credential", { name: v.name }), r.api_key || r.secret);
  });
  root.replaceChildren(panel(t("n.title"), table([t("n.name"), t("n.kind"), t("n.display"), t("u.township"), t("n.state"), ""], rows)), panel(t("n.add"), add));
}

// -- 设置 (another module's) ---------------------------------------------------------------------------------

async function renderSettings(root) {
  const box = h("div", { class: "settings-host" }, h("p", { class: "state", role: "status" }, t("s.loading")));
  root.replaceChildren(box);
  const probe = await fetch("/admin/settings.js", { method: "HEAD" }).catch(() => null);
  if (!probe || probe.status === 404) {
    box.replaceChildren(h("p", { class: "state", role: "status" }, t("s.missing")));
    return;
  }
  try {
    const m = await import("./settings.js");
    box.replaceChildren();
    await m.mount(box, ctx);
  } catch (e) {
    box.replaceChildren(h("p", { class: "bad-text", role: "alert" }, t("s.failed", { m: e.message || String(e) })));
  }
}

// -- 管理日志 ------------------------------------------------------------------------------------------------

function diff(before, after) {
  const keys = [...new Set([...Object.keys(before || {}), ...Object.keys(after || {})])];
  const show = (v) => (v === null || v === undefined ? "∅" : typeof v === "object" ? JSON.stringify(v) : String(v));
  return h("ul", { class: "diff" }, keys.filter((k) => JSON.stringify(before?.[k]) !== JSON.stringify(after?.[k]) || !before)
    .map((k) => h("li", {}, `${k}: `, before ? [h("del", {}, show(before[k])), " → "] : null, h("ins", {}, show(after?.[k])))));
}

async function renderLog(root) {
  const q = S.log;
  const params = new URLSearchParams({ limit: q.limit, offset: q.offset });
  if (q.action) params.set("action", q.action);
  const [data, check] = await Promise.all([api(`/api/v1/admin/log?${params}`), api("/api/v1/admin/log/verify")]);
  const verified = check.ok
    ? h("p", { class: "ok-text", id: "log-verified" }, t("l.verified", { n: check.count }))
    : h("p", { class: "bad-text", id: "log-verified", role: "alert" }, t("l.broken", { seq: check.seq, reason: check.reason }));
  const filter = form([{ name: "action", label: t("l.action"), type: "select", options: optional(ACTIONS.map((a) => [a, actionName(a)]), t("l.allActions")), value: q.action }],
    t("u.search"), async (v) => { q.action = v.action; q.offset = 0; await render("log"); });
  const rows = data.entries.map((e) => h("tr", {}, h("td", {}, e.seq), h("td", {}, fmtDateTime(e.at, { seconds: true })), h("td", {}, e.actor_name),
    h("td", { title: e.action }, actionName(e.action)), h("td", {}, e.target), h("td", {}, diff(e.before, e.after))));
  const pager = h("div", { class: "pager" }, h("span", {}, t("l.total", { n: data.total })),
    h("button", { type: "button", class: "small", disabled: q.offset === 0, onclick: () => { q.offset = Math.max(0, q.offset - q.limit); render("log"); } }, t("u.prev")),
    h("button", { type: "button", class: "small", disabled: q.offset + q.limit >= data.total, onclick: () => { q.offset += q.limit; render("log"); } }, t("u.next")));
  root.replaceChildren(panel(t("l.title"), verified, filter,
    data.entries.length ? table(["#", t("l.at"), t("l.who"), t("l.action"), t("l.target"), t("l.change")], rows) : h("p", { class: "state" }, t("l.none")), pager));
}

// -- the page ------------------------------------------------------------------------------------------------

const RENDER = { county: renderCounty, forces: renderForces, users: renderUsers, integrations: renderIntegrations, settings: renderSettings, log: renderLog };

async function render(view) {
  const root = $(`view-${view}`);
  try {
    await RENDER[view](root);
  } catch (e) {
    root.replaceChildren(h("p", { class: "bad-text", role: "alert" }, t("failed", { m: e.message })));
  }
}

function show(view) {
  for (const v of VIEWS) {
    $(`view-${v}`).hidden = v !== view;
    const tab = $(`tab-${v}`);
    tab.setAttribute("aria-selected", v === view ? "true" : "false");
    tab.tabIndex = v === view ? 0 : -1;
  }
  const u = new URLSearchParams(location.search);
  u.set("tab", view);
  history.replaceState(null, "", `${location.pathname}?${u}`);
  if (view === "settings" && loaded.has(view)) return;  // mounted once: the module keeps its own state
  loaded.add(view);
  render(view);
}

async function main() {
  applyI18n();
  $("lang").onclick = () => setLang(lang() === "en" ? "zh-CN" : "en");
  $("logout").onclick = async () => {
    await fetch("/api/v1/logout", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}", credentials: "same-origin" }).catch(() => null);
    location.href = "/login";
  };
  S.me = await api("/api/v1/me");
  $("who").textContent = `${S.me.name}（${S.me.username}）`;
  if (S.me.role !== "admin") {
    $("denied").hidden = false;
    document.querySelector(".ad-tabs").hidden = true;
    return;
  }
  await loadCounty();
  const tabs = VIEWS.map((v) => $(`tab-${v}`));
  for (const [i, tab] of tabs.entries()) {
    tab.addEventListener("click", () => show(tab.dataset.view));
    tab.addEventListener("keydown", (ev) => {  // arrow keys move between tabs (WAI-ARIA tabs pattern)
      const step = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      const next = tabs[(i + step + tabs.length) % tabs.length];
      next.focus();
      show(next.dataset.view);
    });
  }
  const wanted = new URLSearchParams(location.search).get("tab");
  show(VIEWS.includes(wanted) ? wanted : "county");
  document.body.dataset.ready = "1";  // the tabs answer clicks from now on (tests wait for it too)
}

main().catch((e) => {
  document.body.append(h("p", { class: "bad-text", role: "alert" }, t("failed", { m: e.message || String(e) })));
});
