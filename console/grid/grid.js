// The grid worker's phone page (网格员): a one-tap report into the township's intake (create_call with source
// "grid" and no department: the command centre dispatches it), photos taken with the camera, and the status
// of my own reports (GET /api/v1/reports/mine, polled: a grid worker reads no live stream).
//
// Offline: nothing is queued. A report needs its photos uploaded first, which needs the network, so the page
// says it is offline, keeps the form as filled and sends nothing until the person taps 上报 again online.
// The command id of a filled form is kept until the hub answers, so a retry after a lost answer is not a
// second report.
import { applyI18n, lang, langHeaders, setLang } from "/shared/i18n.js";
import { h } from "/shared/dom.js";
import { fmtDateTime, fmtNumber } from "/shared/format.js";
import { uuid4 } from "/shared/uuid.js";
import { evidenceSection, photoPicker } from "/shared/evidence.js";
import { showLoadState } from "/shared/loadstate.js";
import { G, gt } from "./strings.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 20000;
const state = { me: null, ref: null, pos: null, commandId: null, busy: false, reportsAt: null };

async function api(path, options = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...options,
    headers: langHeaders({ Accept: "application/json", ...(options.headers || {}) }) });
  if (res.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new Error("unauthenticated");
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(data.message || res.statusText), { status: res.status, code: data.code, data });
  return data;
}

let toastTimer = null;
function toast(text, kind = "") {
  const el = $("toast");
  el.textContent = text;
  el.className = `li-toast ${kind}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 5000);
}

function categoryName(code) {
  const c = state.ref && state.ref.categories.find((x) => x.code === code);
  return c ? (lang() === "en" ? c.name_en : c.name_zh) : code;
}

function townshipName(id) {
  const tw = state.ref && state.ref.townships.find((x) => x.id === id);
  return tw ? (lang() === "en" ? tw.name_en : tw.name_zh) : "";
}

// -- my reports -------------------------------------------------------------------------------------------

/** My reports, with the list's states: loading (first time), failed with 重试 (the reports shown before stay,
 *  dated), empty, ok. */
async function loadReports() {
  let data;
  const box = $("reports-state");
  if (!state.reportsAt) showLoadState(box, "loading");
  try {
    data = await api("/api/v1/reports/mine");
  } catch (e) {
    if (e.message !== "unauthenticated") {
      showLoadState(box, "failed", { error: e, retry: loadReports, loadedAt: state.reportsAt });
      $("reports-empty").hidden = true;
    }
    return;
  }
  state.reportsAt = Date.now();
  showLoadState(box, "ok");
  const items = data.reports.map((r) => h("li", { class: "card", dataset: { call: r.call_id, state: r.state } },
    h("div", { class: "card-top" },
      h("span", { class: `report-state st-${r.state}` }, lang() === "en" ? r.state_name.en : r.state_name.zh),
      h("span", { class: "cat" }, categoryName(r.category)),
      h("span", { class: "num" }, fmtNumber(r.number, state.ref))),
    h("div", { class: "card-title" }, r.title),
    r.address ? h("div", { class: "card-addr" }, r.address) : null,
    h("div", { class: "card-addr" }, fmtDateTime(r.created_at)),
    evidenceSection(r.attachments, { title: false })));
  $("reports").replaceChildren(...items);
  $("reports-empty").hidden = items.length > 0;
}

// -- the form ----------------------------------------------------------------------------------------------

function locate() {
  if (!navigator.geolocation) { $("loc").textContent = gt("gr.noLocation"); $("loc").hidden = false; return; }
  $("loc").textContent = gt("gr.locating");
  $("loc").hidden = false;
  navigator.geolocation.getCurrentPosition((p) => {
    state.pos = { lat: Math.round(p.coords.latitude * 1e6) / 1e6, lon: Math.round(p.coords.longitude * 1e6) / 1e6 };
    $("loc").textContent = gt("gr.located", state.pos);
  }, () => { state.pos = null; $("loc").textContent = gt("gr.noLocation"); },
  { enableHighAccuracy: true, timeout: 8000, maximumAge: 60000 });
}

function formChanged() {
  state.commandId = null; // an edited form is a new report
}

async function submit(picker, e) {
  e.preventDefault();
  if (state.busy) return;
  const err = $("form-error");
  err.textContent = "";
  const title = $("title").value.trim();
  const category = $("category").value;
  if (!category) { err.textContent = gt("gr.required", { what: gt("gr.category") }); return; }
  if (!title) { err.textContent = gt("gr.required", { what: gt("gr.what") }); $("title").focus(); return; }
  if (!navigator.onLine) { err.textContent = gt("gr.offline"); return; }
  state.busy = true;
  $("submit").disabled = true;
  $("submit").textContent = gt("gr.sending");
  try {
    state.commandId ||= uuid4();
    const attachments = await picker.upload();
    const body = { command_id: state.commandId, source: "grid", category, title,
                   description: $("description").value.trim(), address: $("address").value.trim(), attachments };
    if (state.pos) Object.assign(body, state.pos);
    const res = await api("/api/v1/calls", { method: "POST", headers: { "Content-Type": "application/json" },
                                             body: JSON.stringify(body) });
    toast(gt("gr.sent", { number: fmtNumber(res.number, state.ref) }), "ok");
    $("report-form").reset();
    picker.clear();
    state.pos = null;
    state.commandId = null;
    $("loc").hidden = true;
    await loadReports();
  } catch (e2) {
    err.textContent = gt("gr.failed", { reason: e2.message || String(e2) });
  } finally {
    state.busy = false;
    $("submit").disabled = false;
    $("submit").textContent = gt("gr.send");
  }
}

function renderOnline() {
  $("offline-banner").hidden = navigator.onLine;
}

async function main() {
  applyI18n(document, G);
  let me;
  try {
    me = await api("/api/v1/me");
  } catch (e) {
    $("who").textContent = gt("gr.loadFailed");
    showLoadState($("reports-state"), "failed", { error: e, retry: () => location.reload() });
    return;
  }
  state.me = me;
  if (me.role !== "grid_worker") {
    const landing = { operator: "/operator/", liaison: "/liaison/", supervisor: "/supervisor/", admin: "/supervisor/",
                      leader: "/supervisor/", department_head: "/supervisor/" }[me.role];
    if (landing) { location.href = landing; return; }
    $("who").textContent = gt("gr.notGrid");
    return;
  }
  state.ref = await api("/api/v1/reference").catch(() => null);
  $("who").textContent = [me.name, townshipName(me.township_id)].filter(Boolean).join(" · ");
  const sel = $("category");
  sel.replaceChildren(h("option", { value: "" }, "—"),
    ...(state.ref ? state.ref.categories : []).filter((c) => !c.retired) // retired: old calls only
      .map((c) => h("option", { value: c.code }, lang() === "en" ? c.name_en : c.name_zh)));
  const picker = photoPicker({ onChange: formChanged });
  $("photos").replaceChildren(picker.root);
  for (const id of ["category", "title", "address", "description"]) $(id).addEventListener("input", formChanged);
  $("locate").addEventListener("click", () => { formChanged(); locate(); });
  $("report-form").addEventListener("submit", (e) => submit(picker, e));
  $("refresh").addEventListener("click", loadReports);
  $("menu-btn").addEventListener("click", () => { $("menu").hidden = !$("menu").hidden; });
  $("lang").addEventListener("click", () => setLang(lang() === "en" ? "zh-CN" : "en"));
  $("logout").addEventListener("click", async () => {
    try { await fetch("/api/v1/logout", { method: "POST", credentials: "same-origin" }); } catch { /* offline */ }
    location.href = "/login";
  });
  window.addEventListener("online", () => { renderOnline(); loadReports(); });
  window.addEventListener("offline", renderOnline);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") loadReports(); });
  setInterval(() => { if (document.visibilityState === "visible" && navigator.onLine) loadReports(); }, POLL_MS);
  renderOnline();
  await loadReports();
  document.body.dataset.ready = "1";
}

main();
