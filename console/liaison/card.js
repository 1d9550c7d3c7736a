// One assignment as a card: priority, place, the running deadline, its state and the one-tap actions.
import { h } from "/shared/dom.js";
import { cameraIcon } from "/shared/evidence.js";
import { escalationLevel, escalationText, overdueText, runningDeadline, toDate } from "/shared/format.js";
import { CALL_FINAL, DUE_BY_STATE, callNumber, categoryName, fmtSpan, now } from "./state.js";
import { tt } from "./strings.js";
import { effectiveState, pendingFor, send } from "./outbox.js";
import { arrive, arriveWithPhotos, openSheet } from "./sheets.js";
import { go } from "./detail.js";

// -- rendering -------------------------------------------------------------------------------------------

export function actionButtons(a) {
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
  else if (st === "acknowledged") btns.push(big("arrive", () => arrive(a)), cameraArrive(a), decline);
  else if (st === "on_scene") btns.push(big("report_result", () => openSheet("report", a)));
  return btns.length ? h("div", { class: "actions" }, btns) : null;
}

/** The camera button: take photos on scene and report arrival with them (the photos need the network; see sheets.js). */
function cameraArrive(a) {
  const input = h("input", { type: "file", accept: "image/*", capture: "environment", multiple: true,
    class: "photo-input", onclick: (e) => e.stopPropagation() });
  input.addEventListener("change", () => {
    const files = [...input.files].slice(0, 9);
    input.value = "";
    arriveWithPhotos(a, files);
  });
  return h("label", { class: "btn ghost camera", dataset: { act: "arrive-photo" }, title: tt("li.arrivePhoto"),
    "aria-label": tt("li.arrivePhoto"), onclick: (e) => e.stopPropagation() }, cameraIcon(), input);
}

export function dueBlock(a, large = true) {
  const st = effectiveState(a);
  const spec = DUE_BY_STATE[st];
  if (!spec || CALL_FINAL.includes(a.call.state)) return null;
  const due = a[spec[1]];
  if (!due) return null;
  return h("div", { class: `due ${large ? "large" : ""}`, dataset: { due: String(due), kind: spec[0] } },
    h("span", { class: "due-label" }, tt(`li.due.${spec[0]}`)),
    h("span", { class: "due-time" }), h("span", { class: "due-suffix" }));
}

export function tickDue(root = document) {
  const n = now();
  for (const el of root.querySelectorAll(".due[data-due]")) {
    const left = Number(el.dataset.due) - n;
    const over = left < 0;
    el.classList.toggle("over", over);
    el.classList.toggle("soon", !over && left < 60000);
    el.querySelector(".due-time").textContent = fmtSpan(left);
    el.querySelector(".due-suffix").textContent = over ? tt("li.over") : tt("li.left");
  }
  for (const el of root.querySelectorAll("[data-overdue-since]")) {
    const ms = n - toDate(el.dataset.overdueSince).getTime();
    el.hidden = ms <= 0;
    if (ms > 0) el.textContent = overdueText(ms);
  }
}

/** 超时 with how long, live (tickDue), while a clock still running on this phone's view has passed its deadline. */
function overdueMark(a, st) {
  const d = CALL_FINAL.includes(a.call.state) ? null : runningDeadline({ ...a, state: st });
  return d ? h("b", { class: "mark mark-overdue", hidden: true, dataset: { overdueSince: d.due.toISOString() } }) : null;
}

function escalationMark(a) {
  const lvl = escalationLevel(a);
  return lvl ? h("b", { class: "mark mark-esc", dataset: { level: String(lvl) } }, escalationText(lvl)) : null;
}

/** 主办 (lead) or 协办 (supporting) on the call; nothing for an assignment recorded before the distinction. */
export function roleChip(a) {
  if (a.lead !== true && a.lead !== false) return null;
  return h("span", { class: `role ${a.lead ? "lead" : "support"}`, dataset: { role: a.lead ? "lead" : "support" } },
    tt(a.lead ? "li.lead" : "li.support"));
}

export function card(a) {
  const st = effectiveState(a);
  const queued = pendingFor(a.id).filter((p) => p.state === "pending").length;
  const prio = a.call.priority || "normal";
  return h("li", { class: `card prio-${prio} st-${st}`, dataset: { assignment: a.id, call: a.call_id, state: st },
    onclick: () => go(a.call_id) },
    h("div", { class: "card-top" },
      h("span", { class: `prio prio-${prio}` }, tt(`li.prio.${prio}`)),
      h("span", { class: "cat" }, categoryName(a.call.category)),
      h("span", { class: "num" }, callNumber(a.call.number)),
      roleChip(a)),
    h("div", { class: "card-title" }, a.call.title || ""),
    a.call.address ? h("div", { class: "card-addr" }, a.call.address) : null,
    dueBlock(a),
    h("div", { class: "card-state" },
      h("span", { class: "state" }, tt(`asg.${st}`)),
      CALL_FINAL.includes(a.call.state) ? h("span", { class: "state bad" }, tt(`call.${a.call.state}`)) : null,
      queued ? h("span", { class: "queued" }, tt("li.queuedChip")) : null,
      overdueMark(a, st), escalationMark(a)),
    actionButtons(a),
    h("button", { type: "button", class: "link", dataset: { act: "detail" } }, tt("li.detail")));
}
