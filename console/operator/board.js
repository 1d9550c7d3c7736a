// The board: the open calls as rows in two lanes, with filters, live countdowns and presence.
//
// The order (issue #18): the operator must never have to hunt for the call that is about to breach.
//   1. 需处理 (the action lane, on top, always shown when it has calls): calls waiting for the operator — 待派单,
//      待审核, 已审核/已回访 (to visit or close), and any 申请转派 — whatever their priority. The lane holds at most
//      about 40% of the board's height and scrolls inside itself, so it can never push lane 2 out of view.
//   2. 处置中 (the risk lane): every other open call, ordered by risk:
//        a. breached calls first (a running clock past its deadline), most overdue first, the overdue time
//           divided by the priority weight (urgent 1, normal 2, low 4), so an urgent breach leads;
//        b. then calls counting down, by the time left to their nearest running deadline multiplied by the
//           priority weight: an urgent call with 1m30s left (1.5 min) comes before a normal one with 5 min
//           (10 min weighted) and before a low one with 30 min (120);
//        c. then calls with no clock running (results reported, waiting for the others), by priority, oldest first.
//   Within the action lane the same key orders its calls (a transfer request's review deadline counts there).
// A countdown grows louder as it nears zero (shared/format.js urgencyLevel): calm, then ▲ warning at half its
// window (at most the last 30 min), then ‼ 即将超时 in its last fifth (30 s to 10 min), then ✖ 超时 — shape and
// words as well as colour. The board re-sorts every 15 s and on every event.
import { t } from "/shared/i18n.js";
import { categoryName, countdown, escalationLevel, escalationText, fmtAge, fmtNumber, overdueText, refName, runningDeadline, targetName, toDate } from "/shared/format.js";
import { showLoadState } from "/shared/loadstate.js";
import { tickMilestones } from "/shared/milestones.js";
import { $, CLOSED_ASG, NEXT_DEADLINE, OPEN_CALL_STATES, PRIO_RANK, S, conn, esc, now, targetOptions } from "./state.js";
import { openDetail, renderDetail } from "./drawer.js";

// -- board ------------------------------------------------------------------------------------------

const PRIO_WEIGHT = { urgent: 1, normal: 2, low: 4 };

function openAssignments(call) {
  return (call.assignments || []).filter((a) => !CLOSED_ASG.has(a.state));
}

/** The deadline a chip counts down to: the clock of the step the department is on. Windows count from dispatch. */
export function nextDue(a) {
  const kind = NEXT_DEADLINE[a.state];
  if (!kind) return null;
  return { kind, due: a[`${kind}_due`], start: a.dispatched_at };
}

export function needsAction(call) {
  return call.state === "review" || call.state === "accepted" || call.state === "visited" || call.state === "intake"
    || (call.assignments || []).some((a) => a.state === "declined");
}

/** Milliseconds to the call's nearest running deadline (negative: breached), Infinity when no clock runs. */
function timeToBreach(call) {
  let soonest = Infinity;
  for (const a of openAssignments(call)) {
    const d = runningDeadline(a);
    if (d) soonest = Math.min(soonest, d.due.getTime() - now());
    const review = a.state === "declined" ? toDate(a.review_due) : null; // the operator's own clock
    if (review) soonest = Math.min(soonest, review.getTime() - now());
  }
  return soonest;
}

/** The sort key (ascending): see the rule at the top of this module. */
export function riskKey(call) {
  const left = timeToBreach(call);
  const weight = PRIO_WEIGHT[call.priority] ?? 2;
  const created = toDate(call.created_at)?.getTime() ?? 0;
  if (left <= 0) return [0, left / weight, created];
  if (Number.isFinite(left)) return [1, left * weight, created];
  return [2, PRIO_RANK[call.priority] ?? 1, created];
}

function compareRisk(a, b) {
  const ka = riskKey(a), kb = riskKey(b);
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] < kb[i] ? -1 : 1;
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

/** Calls created while offline, waiting in the outbox (待发送): shown first in the action lane until the hub has them. */
function queuedRows() {
  return conn.pending().filter((c) => c.name === "create_call" && c.state === "pending").map((c) => {
    const a = c.args || {};
    return `<div class="row pending-row p-${esc(a.priority)}" role="row" data-command="${esc(c.command_id)}">`
      + `<span class="prio" role="cell"><b class="badge p-${esc(a.priority)}">${esc(t("prio." + a.priority))}</b></span>`
      + `<span class="call" role="cell"><span class="cat">${esc(categoryName(S.idx, a.category))}</span>`
      + `<span class="title">${esc(a.title)}</span>`
      + `<small class="num"><b class="mark mark-pending"><span aria-hidden="true">⇡</span> ${esc(t("pendingCall"))}</b> ${esc(t("pendingCallHint"))}</small></span>`
      + `<span class="place" role="cell">${esc(a.address || "—")}</span>`
      + `<span class="age" role="cell" data-since="${esc(new Date(c.queued_at + S.skew).toISOString())}"></span>`
      + `<span class="depts" role="cell">${(a.targets || []).map((tg) => `<span class="chip"><b>${esc(targetName(S.idx, tg))}</b></span>`).join("")}</span></div>`;
  });
}

let renderQueued = false;
export function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

/** The board's load state: loading (first load), failed (with 重试), stale (reconnecting), empty, or ok. */
export function renderBoardState() {
  const box = $("#board-state");
  const list = [...S.calls.values()].filter((c) => OPEN_CALL_STATES.includes(c.state));
  if (S.loadError) {
    showLoadState(box, "failed", { error: S.loadError, retry: S.retryLoad, loadedAt: S.loaded ? S.loadedAt : null });
  } else if (!S.loaded) {
    showLoadState(box, "loading");
  } else if (conn.status === "offline") {
    showLoadState(box, "stale", { loadedAt: S.loadedAt });
  } else if (!list.length && !conn.pending().some((c) => c.name === "create_call" && c.state === "pending")) {
    showLoadState(box, "empty", { text: t("emptyNone") });
  } else if (list.length && !list.some(matches)) {
    showLoadState(box, "empty", { text: t("empty") });
  } else {
    showLoadState(box, "ok");
  }
  // a failed first load shows no list at all: it must not look like a board with no calls
  $("#rows").hidden = !S.loaded;
}

export function render() {
  const list = [...S.calls.values()].filter((c) => OPEN_CALL_STATES.includes(c.state));
  const shown = list.filter(matches).sort(compareRisk);
  const action = shown.filter(needsAction);
  const risk = shown.filter((c) => !needsAction(c));
  const queued = queuedRows();
  const focusedId = document.activeElement?.closest?.(".row")?.dataset.id;
  $("#rows-action").innerHTML = queued.join("") + action.map(rowHTML).join("");
  $("#rows-risk").innerHTML = risk.map(rowHTML).join("");
  $("#lane-action").hidden = action.length + queued.length === 0;
  $("#lane-risk").hidden = risk.length === 0;
  $("#rows").classList.toggle("both", action.length + queued.length > 0 && risk.length > 0);
  $("#n-action").textContent = String(action.length + queued.length);
  $("#n-risk").textContent = String(risk.length);
  S.flash.clear();
  $("#count").textContent = t("count", { n: list.length }) + (shown.length !== list.length ? ` · ${shown.length}` : "");
  renderBoardState();
  if (focusedId) $("#rows").querySelector(`[data-id="${CSS.escape(focusedId)}"]`)?.focus();
  tick();
  if (S.detail) renderDetail();
}

/** Once a second: ages and countdowns, without re-rendering rows. */
export function tick() {
  const n = now();
  for (const el of document.querySelectorAll("[data-since]")) el.textContent = fmtAge(el.dataset.since, n);
  for (const el of document.querySelectorAll("time[data-due]")) {
    const c = countdown(el.dataset.due, n, { start: el.dataset.start || null });
    el.textContent = c.icon ? `${c.icon} ${c.text}` : c.text;
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
    row.classList.toggle("critical", !row.classList.contains("breach") && !!row.querySelector('.chip[data-level="critical"]'));
  }
  tickMilestones(n);
}

// -- board interaction, filters ------------------------------------------------------------------------

$("#rows").addEventListener("click", (e) => {
  const row = e.target.closest(".row");
  if (row && row.dataset.id) openDetail(row.dataset.id);
});
$("#rows").addEventListener("keydown", (e) => {
  const row = e.target.closest(".row");
  if (!row) return;
  if ((e.key === "Enter" || e.key === " ") && row.dataset.id) { e.preventDefault(); openDetail(row.dataset.id); }
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
