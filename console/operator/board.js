// The board: the open calls as rows, most urgent first, with filters, live countdowns and presence.
import { t } from "/shared/i18n.js";
import { categoryName, countdown, escalationLevel, escalationText, fmtAge, fmtNumber, overdueText, refName, runningDeadline, targetName, toDate } from "/shared/format.js";
import { $, CLOSED_ASG, NEXT_DEADLINE, OPEN_CALL_STATES, PRIO_RANK, S, esc, now, targetOptions } from "./state.js";
import { openDetail, renderDetail } from "./drawer.js";

// -- board ------------------------------------------------------------------------------------------

function openAssignments(call) {
  return (call.assignments || []).filter((a) => !CLOSED_ASG.has(a.state));
}

export function nextDue(a) {
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

/** The earliest deadline among the call's running clocks (the call is overdue once it passes), or null. */
function overdueSince(call) {
  let best = null;
  for (const a of openAssignments(call)) {
    const d = runningDeadline(a);
    if (d && (!best || d.due < best)) best = d.due;
  }
  return best;
}

function maxLevel(call) {
  return Math.max(0, ...(call.assignments || []).map(escalationLevel));
}

function matches(call) {
  const f = S.filters;
  if (f.flag === "overdue") { const since = overdueSince(call); if (!since || since.getTime() >= now()) return false; }
  if (f.flag === "escalated" && !maxLevel(call)) return false;
  if (f.state === "_action" && !needsAction(call)) return false;
  if (f.state && f.state !== "_action" && call.state !== f.state) return false;
  if (f.category && call.category !== f.category) return false;
  if (f.target && !openAssignments(call).some((a) => a.target === f.target)) return false;
  if (f.q) {
    const hay = [call.number, fmtNumber(call.number, S.ref), call.title, call.address, call.description, categoryName(S.idx, call.category),
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
  const since = overdueSince(call);
  const lvl = maxLevel(call);
  // 超时 (live, shown by tick once the earliest running deadline has passed) and 督办 markers
  const marks = (since ? `<b class="mark mark-overdue" data-overdue-since="${esc(since.toISOString())}" hidden></b>` : "")
    + (lvl ? `<b class="mark mark-esc" data-level="${lvl}">${esc(escalationText(lvl))}</b>` : "");
  return `<div class="row p-${esc(call.priority)} cs-${esc(call.state)}${flash}" role="row" tabindex="0" data-id="${esc(call.id)}">`
    + `<span class="prio" role="cell"><b class="badge p-${esc(call.priority)}">${esc(t("prio." + call.priority))}</b></span>`
    + `<span class="call" role="cell"><span class="cat">${esc(categoryName(S.idx, call.category))}</span>`
    + `<span class="title">${esc(call.title)}</span>`
    + `<small class="num">${esc(fmtNumber(call.number, S.ref))} · <span class="cstate">${esc(t("call." + call.state))}</span>${marks}</small></span>`
    + `<span class="place" role="cell">${esc(call.address || "—")}</span>`
    + `<span class="age" role="cell" data-since="${esc(call.created_at)}"></span>`
    + `<span class="depts" role="cell">${asgs.map(chip).join("") || `<span class="muted">—</span>`}</span></div>`;
}

let renderQueued = false;
export function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

export function render() {
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
export function tick() {
  const n = now();
  for (const el of document.querySelectorAll("[data-since]")) el.textContent = fmtAge(el.dataset.since, n);
  for (const el of document.querySelectorAll("time[data-due]")) {
    const c = countdown(el.dataset.due, n, { start: el.dataset.start || null });
    el.textContent = c.text;
    el.className = "cd-" + c.level;
    const chipEl = el.closest(".chip, .asg");
    if (chipEl) chipEl.dataset.level = c.level;
  }
  for (const el of document.querySelectorAll("[data-overdue-since]")) {
    const ms = n - toDate(el.dataset.overdueSince).getTime();
    el.hidden = ms <= 0;
    if (ms > 0) el.textContent = overdueText(ms);
  }
  for (const row of document.querySelectorAll("#rows .row")) {
    row.classList.toggle("breach", !!row.querySelector('.chip[data-level="due"]'));
  }
}

// -- board interaction, filters ------------------------------------------------------------------------

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

export function fillFilters() {
  $("#f-state").innerHTML = `<option value="">${esc(t("allStates"))}</option><option value="_action">${esc(t("needsAction"))}</option>`
    + OPEN_CALL_STATES.map((s) => `<option value="${s}">${esc(t("call." + s))}</option>`).join("");
  $("#f-target").innerHTML = `<option value="">${esc(t("allTargets"))}</option>`
    + targetOptions(new Set()).map(([c, n]) => `<option value="${esc(c)}">${esc(n)}</option>`).join("");
  $("#f-category").innerHTML = `<option value="">${esc(t("allCategories"))}</option>`
    + S.ref.categories.map((c) => `<option value="${esc(c.code)}">${esc(refName(c))}</option>`).join("");
  $("#f-flag").innerHTML = `<option value="">${esc(t("allFlags"))}</option>`
    + ["overdue", "escalated"].map((k) => `<option value="${k}">${esc(t("flag." + k))}</option>`).join("");
}

for (const [id, key] of [["#f-state", "state"], ["#f-target", "target"], ["#f-category", "category"], ["#f-flag", "flag"]]) {
  $(id).addEventListener("change", (e) => { S.filters[key] = e.target.value; render(); });
}
$("#search").addEventListener("input", (e) => { S.filters.q = e.target.value.trim(); render(); });
