// Intake: the form that creates a call (问 → 派), prefilled departments by category, Enter to submit.
import { t } from "/shared/i18n.js";
import { categoryName, fmtNumber, refName } from "/shared/format.js";
import { $, S, esc, toast } from "./state.js";
import { scheduleRender } from "./board.js";
import { createCall, refreshCall } from "./model.js";
import { clearErrors, showError } from "./forms.js";
import { updateOfflineWarning } from "./duty.js";

export function fillCreateForm() {
  const cat = $("#c-category");
  cat.innerHTML = `<option value="">${esc(t("choose"))}</option>`
    + S.ref.categories.filter((c) => !c.retired)  // a retired category stays on old calls only
      .map((c) => `<option value="${esc(c.code)}">${esc(refName(c))}</option>`).join("");
  $("#c-source").innerHTML = S.ref.sources.map((s) => `<option value="${esc(s)}">${esc(t("src." + s))}</option>`).join("");
  const depts = S.ref.departments.filter((d) => S.township.departments.includes(d.code));
  const targets = [...depts.map((d) => [d.code, refName(d)]), ...(S.township.units || []).map((u) => [`unit:${u.id}`, refName(u)])];
  $("#c-targets").innerHTML = targets.map(([code, name]) =>
    `<label class="tchip"><input type="checkbox" name="targets" value="${esc(code)}"><span>${esc(name)}</span></label>`).join("");
}

$("#c-category").addEventListener("change", (e) => {
  const c = S.idx.categories.get(e.target.value);
  const route = new Set(c?.route || []);
  for (const box of document.querySelectorAll('#c-targets input[name="targets"]')) box.checked = route.has(box.value);
  updateOfflineWarning($("#create-form"));
});

export function openCreate() {
  const dlg = $("#create");
  if (dlg.open) return;
  clearErrors($("#create-form"));
  updateOfflineWarning($("#create-form"));
  dlg.showModal();
  $("#c-category").focus();
}

$("#new-call").addEventListener("click", openCreate);

$("#create-form").addEventListener("keydown", (e) => {
  // Enter submits from any field; in the description Ctrl/⌘+Enter does (Enter is a new line there).
  if (e.key !== "Enter" || e.isComposing) return;
  if (e.target.tagName === "TEXTAREA" && !(e.ctrlKey || e.metaKey)) return;
  if (e.target.tagName === "BUTTON") return;
  e.preventDefault();
  $("#create-form").requestSubmit();
});

$("#create-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target;
  clearErrors(form);
  const fd = new FormData(form);
  const category = fd.get("category");
  if (!category) { showError(form, { field: "category", message: t("required") }); return; }
  const address = (fd.get("address") || "").trim();
  let title = (fd.get("title") || "").trim();
  const description = (fd.get("description") || "").trim();
  if (!title) {
    // The matter in a line: the start of the description, else the category and place.
    const line = description.split(/[\n。！!？?]/)[0].trim();
    title = line ? line.slice(0, 60) : [categoryName(S.idx, category), address].filter(Boolean).join(" · ");
  }
  const args = {
    source: fd.get("source"), category, title, description, address,
    priority: fd.get("priority") || "normal", targets: fd.getAll("targets"),
  };
  const reporter = (fd.get("reporter_name") || "").trim();
  const phone = (fd.get("reporter_phone") || "").trim();
  if (reporter) args.reporter_name = reporter;
  if (phone) args.reporter_phone = phone;
  const btn = $("#create-submit");
  btn.disabled = true;
  let queued = false;
  const done = () => {
    form.reset();
    updateOfflineWarning(form);
    $("#create").close();
  };
  try {
    const out = await createCall(args, { onQueued: () => {
      // Offline: the form closes, the call waits on the board as 待发送 and goes out when the network is back.
      queued = true;
      btn.disabled = false;
      done();
      toast(t("queuedCall"), "warn");
      scheduleRender();
    } });
    S.flash.add(out.call_id);
    if (!queued) done();
    toast(t("created", { number: fmtNumber(out.number, S.ref) }));
    if (out.call_id && !S.calls.has(out.call_id)) refreshCall(out.call_id);
  } catch (err) {
    if (!queued) showError(form, err); // a queued call the hub refuses is listed under 指令被拒绝 (./operator.js)
  } finally {
    btn.disabled = false;
    scheduleRender();
  }
});
