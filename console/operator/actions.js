// One action on the call shown in the drawer (dispatch more, re-route, send back, …): a small form, then the command.
import { t } from "/shared/i18n.js";
import { targetName } from "/shared/format.js";
import { $, CLOSED_ASG, S, esc, targetOptions } from "./state.js";
import { run } from "./model.js";
import { clearErrors, showError } from "./forms.js";
import { updateOfflineWarning } from "./duty.js";

// -- one action (a small form) ------------------------------------------------------------------------

export function openAction(kind, asgId) {
  const d = S.detail;
  const busy = new Set(d.assignments.filter((a) => !CLOSED_ASG.has(a.state)).map((a) => a.target));
  const a = asgId ? d.assignments.find((x) => x.id === asgId) : null;
  const fields = {
    dispatch: `<fieldset class="fld"><legend>${esc(t("fTargetsAdd"))}</legend>${targetOptions(busy).map(([c, n]) => `<label class="tchip"><input type="checkbox" name="targets" value="${esc(c)}"><span>${esc(n)}</span></label>`).join("")}<em class="field-error" data-for="targets"></em></fieldset>${OFFLINE}`,
    reroute: rerouteFields(a, busy, false),
    approve: rerouteFields(a, busy, true),
    reject_transfer: (a?.decline_reason ? `<p class="note">${esc(t("declineReason"))}: ${esc(a.decline_reason)}</p>` : "") + reasonField("fRejectReason"),
    set_lead: `<p>${esc(t("confirmLead", { target: a ? targetName(S.idx, a.target) : "" }))}</p>${reasonField("fReason", false)}`,
    withdraw: reasonField(), cancel: reasonField(),
    send_back: `<fieldset class="fld"><legend>${esc(t("fSendBack"))}</legend>${d.assignments.filter((x) => x.state === "reported").map((x) => `<label class="tchip"><input type="checkbox" name="assignment_ids" value="${esc(x.id)}" checked><span>${esc(targetName(S.idx, x.target))}</span></label>`).join("")}<em class="field-error" data-for="assignment_ids"></em></fieldset>${reasonField()}`,
    return_visit: d.assignments.filter((x) => x.state === "accepted").map((x) => ratingFields(x)).join("")
      + `<em class="field-error" data-for="ratings"></em><em class="field-error" data-for="reopen"></em>`
      + `<label class="fld"><span>${esc(t("fCommentAll"))}</span><textarea name="comment" rows="2" maxlength="2000"></textarea><em class="field-error" data-for="comment"></em></label>`,
    nudge: `<label class="fld"><span>${esc(t("fNudge"))}</span><textarea name="text" rows="2" maxlength="2000" placeholder="${esc(t("fNudgePh"))}"></textarea><em class="field-error" data-for="text"></em></label>`,
    note: `<label class="fld"><span>${esc(t("fNote"))}</span><textarea name="text" rows="3" maxlength="2000" required></textarea><em class="field-error" data-for="text"></em></label>`,
    accept: "",
    close: `<p>${esc(t("confirmClose"))}</p>` + (d.state === "accepted"
      ? `<label class="fld"><span>${esc(t("fCloseReason"))}</span><textarea name="reason" rows="2" maxlength="500"${d.source === "hotline_12345" ? " required" : ""}></textarea><small class="hint">${esc(t("closeReasonHint"))}</small><em class="field-error" data-for="reason"></em></label>` : ""),
  }[kind];
  const form = $("#action-form");
  form.dataset.kind = kind === "approve" ? "reroute" : kind;
  form.dataset.asg = asgId || "";
  $("#action-h").textContent = t("act." + kind) + (a ? ` · ${targetName(S.idx, a.target)}` : "");
  $("#action-fields").innerHTML = fields;
  $("#action-submit").textContent = t("act." + kind);
  clearErrors(form);
  updateOfflineWarning(form);
  $("#action").showModal();
  (form.querySelector("#action-fields input, #action-fields select, #action-fields textarea") || $("#action-submit")).focus();
}

// Filled by ./duty.js while targets are picked: which of them have nobody online (a warning, not a block).
const OFFLINE = `<p class="warn-offline" data-offline role="status" hidden></p>`;

function reasonField(label = "fReason", required = true) {
  return `<label class="fld"><span>${esc(t(label))}</span><textarea name="reason" rows="2" maxlength="500"${required ? " required" : ""}></textarea><em class="field-error" data-for="reason"></em></label>`;
}

// Approve a transfer request (or move an assignment): another target, a reason, "not our remit" (excluded
// from the department's evaluation) ticked when it answers the department's own request.
function rerouteFields(a, busy, approving) {
  return `<label class="fld"><span>${esc(t("fTarget1"))}</span><select name="target" required>${targetOptions(busy).map(([c, n]) => `<option value="${esc(c)}"${a?.suggested_target === c ? " selected" : ""}>${esc(n)}</option>`).join("")}</select><em class="field-error" data-for="target"></em></label>${OFFLINE}`
    + (a?.decline_reason ? `<p class="note">${esc(t("declineReason"))}: ${esc(a.decline_reason)}</p>` : "")
    + reasonField()
    + `<label class="fld check"><input type="checkbox" name="not_our_remit"${approving ? " checked" : ""}> <span>${esc(t("fNotOurRemit"))}</span></label>`;
}

// One department's return visit: resolved, satisfaction 1–5, comment, and whether to reopen it (重办).
function ratingFields(a) {
  const id = esc(a.id);
  return `<fieldset class="fld rating" data-rating="${id}"><legend>${esc(targetName(S.idx, a.target))}${a.lead ? ` · ${esc(t("lead"))}` : a.lead === false ? ` · ${esc(t("support"))}` : ""}</legend>`
    + `<div class="yn"><label><input type="radio" name="resolved-${id}" value="true" checked> ${esc(t("yes"))}</label> <label><input type="radio" name="resolved-${id}" value="false"> ${esc(t("no"))}</label></div>`
    + `<div class="stars"><span>${esc(t("fSatisfaction"))}</span> ${[1, 2, 3, 4, 5].map((n) => `<label><input type="radio" name="satisfaction-${id}" value="${n}"${n === 5 ? " checked" : ""}> ${n}</label>`).join(" ")}</div>`
    + `<input type="text" name="comment-${id}" maxlength="2000" placeholder="${esc(t("fComment"))}">`
    + `<label class="reopen"><input type="checkbox" name="reopen" value="${id}" disabled> ${esc(t("fReopen"))}</label></fieldset>`;
}

// An unresolved or unsatisfied (≤ 3) rating may be reopened, and is by default; a satisfied one may not.
$("#action-form").addEventListener("change", (e) => {
  const box = e.target.closest("[data-rating]");
  if (!box || e.target.name === "reopen") return;
  const id = box.dataset.rating;
  const resolved = box.querySelector(`[name="resolved-${CSS.escape(id)}"]:checked`)?.value === "true";
  const sat = Number(box.querySelector(`[name="satisfaction-${CSS.escape(id)}"]:checked`)?.value || 5);
  const reopen = box.querySelector('[name="reopen"]');
  const unsatisfied = !resolved || sat <= 3;
  reopen.disabled = !unsatisfied;
  reopen.checked = unsatisfied;
});

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
  if (kind === "reroute") { args.target = fd.get("target"); args.not_our_remit = fd.get("not_our_remit") === "on"; }
  if (["withdraw", "cancel", "send_back", "reroute", "reject_transfer"].includes(kind)) args.reason = (fd.get("reason") || "").trim();
  if (["set_lead", "close"].includes(kind)) {
    const r = (fd.get("reason") || "").trim();
    if (r) args.reason = r;
    if (kind === "close" && !r && form.querySelector('[name="reason"][required]')) { showError(form, { field: "reason", message: t("required") }); return; }
  }
  if (kind === "set_lead") { args.call_id = S.detail.id; args.assignment_id = form.dataset.asg; }
  if (kind === "send_back") args.assignment_ids = fd.getAll("assignment_ids");
  if (kind === "return_visit") {
    args.ratings = [...form.querySelectorAll("[data-rating]")].map((box) => {
      const id = box.dataset.rating;
      const r = { assignment_id: id, resolved: fd.get(`resolved-${id}`) === "true", satisfaction: Number(fd.get(`satisfaction-${id}`)) };
      const c = (fd.get(`comment-${id}`) || "").trim();
      if (c) r.comment = c;
      return r;
    });
    args.reopen = fd.getAll("reopen");
    const c = (fd.get("comment") || "").trim();
    if (c) args.comment = c;
  }
  if (kind === "note") args.text = (fd.get("text") || "").trim();
  if (kind === "nudge") { const text = (fd.get("text") || "").trim(); if (text) args.text = text; }
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
