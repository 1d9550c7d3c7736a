// Errors shown in the operator's forms: next to the field the hub (or the page) named, else in the footer.

export function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const general = form.querySelector(".error");
  if (general) general.textContent = "";
}

export function showError(form, err) {
  const field = String(err.field || "").replace(/^args\./, "").split(/[.[]/)[0];
  const slot = field && form.querySelector(`.field-error[data-for="${CSS.escape(field)}"]`);
  let msg = err.message || err.code || String(err);
  if (slot) {
    // the field is named by its place: drop "title: " (English) or "事由：" (Chinese) from the message
    msg = msg.replace(new RegExp(`^(args\\.)?${field}[^:]*:\\s*`), "").replace(/^[^：:]{1,16}：/, "");
    slot.textContent = msg;
    const input = form.querySelector(`[name="${CSS.escape(field)}"]`);
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  } else {
    form.querySelector(".error").textContent = msg;
  }
}
