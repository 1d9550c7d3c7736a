// One action on the call shown in the drawer (dispatch more, re-route, send back, …): a small form, then the command.
import { t } from "/shared/i18n.js";
import { targetName } from "/shared/format.js";
import { $, CLOSED_ASG, S, esc, targetOptions } from "./state.js";
import { run } from "./model.js";
import { clearErrors, showError } from "./forms.js";

// -- one action (a small form) ------------------------------------------------------------------------

export function openAction(kind, asgId) {
  const d = S.detail;
  const busy = new Set(d.assignments.filter((a) => !CLOSED_ASG.has(a.state)).map((a) => a.target));
  const a = asgId ? d.assignments.find((x) => x.id === asgId) : null;
  const fields = {
    dispatch: `<fieldset class="fld"><legend>${esc(t("fTargetsAdd"))}</legend>${targetOptions(busy).map(([c, n]) => `<label class="tchip"><input type="checkbox" name="targets" value="${esc(c)}"><span>${esc(n)}</span></label>`).join("")}<em class="field-error" data-for="targets"></em></fieldset>`,
    reroute: `<label class="fld"><span>${esc(t("fTarget1"))}</span><select name="target" required>${targetOptions(busy).map(([c, n]) => `<option value="${esc(c)}"${a?.suggested_target === c ? " selected" : ""}>${esc(n)}</option>`).join("")}</select><em class="field-error" data-for="target"></em></label>`,
    withdraw: reasonField(), cancel: reasonField(),
    send_back: `<fieldset class="fld"><legend>${esc(t("fSendBack"))}</legend>${d.assignments.filter((x) => x.state === "reported").map((x) => `<label class="tchip"><input type="checkbox" name="assignment_ids" value="${esc(x.id)}" checked><span>${esc(targetName(S.idx, x.target))}</span></label>`).join("")}<em class="field-error" data-for="assignment_ids"></em></fieldset>${reasonField()}`,
    return_visit: `<fieldset class="fld"><legend>${esc(t("fResolved"))}</legend><label><input type="radio" name="resolved" value="true" checked> ${esc(t("yes"))}</label> <label><input type="radio" name="resolved" value="false"> ${esc(t("no"))}</label><em class="field-error" data-for="resolved"></em></fieldset>`
      + `<fieldset class="fld stars"><legend>${esc(t("fSatisfaction"))}</legend>${[1, 2, 3, 4, 5].map((n) => `<label><input type="radio" name="satisfaction" value="${n}"${n === 5 ? " checked" : ""}> ${n}</label>`).join(" ")}<em class="field-error" data-for="satisfaction"></em></fieldset>`
      + `<label class="fld"><span>${esc(t("fComment"))}</span><textarea name="comment" rows="2" maxlength="2000"></textarea><em class="field-error" data-for="comment"></em></label>`,
    note: `<label class="fld"><span>${esc(t("fNote"))}</span><textarea name="text" rows="3" maxlength="2000" required></textarea><em class="field-error" data-for="text"></em></label>`,
    accept: "", close: `<p>${esc(t("confirmClose"))}</p>`,
  }[kind];
  const form = $("#action-form");
  form.dataset.kind = kind;
  form.dataset.asg = asgId || "";
  $("#action-h").textContent = t("act." + kind) + (a ? ` · ${targetName(S.idx, a.target)}` : "");
  $("#action-fields").innerHTML = fields;
  $("#action-submit").textContent = t("act." + kind);
  clearErrors(form);
  $("#action").showModal();
  (form.querySelector("#action-fields input, #action-fields select, #action-fields textarea") || $("#action-submit")).focus();
}

function reasonField() {
  return `<label class="fld"><span>${esc(t("fReason"))}</span><textarea name="reason" rows="2" maxlength="500" required></textarea><em class="field-error" data-for="reason"></em></label>`;
}

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
  if (kind === "reroute") args.target = fd.get("target");
  if (["withdraw", "cancel", "send_back"].includes(kind)) args.reason = (fd.get("reason") || "").trim();
  if (kind === "send_back") args.assignment_ids = fd.getAll("assignment_ids");
  if (kind === "return_visit") {
    args.resolved = fd.get("resolved") === "true";
    args.satisfaction = Number(fd.get("satisfaction"));
    const c = (fd.get("comment") || "").trim();
    if (c) args.comment = c;
  }
  if (kind === "note") args.text = (fd.get("text") || "").trim();
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
