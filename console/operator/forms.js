// Errors shown in the operator's forms: next to the field the hub (or the page) named, else in the footer.

export function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const general = form.querySelector(".error");
  if (general) general.textContent = "";
}

/** Clear a field's message as soon as the field is changed (once per form). */
function clearOnInput(form) {
  if (form.dataset.clearsErrors) return;
  form.dataset.clearsErrors = "1";
  const clear = (ev) => {
    const name = ev.target && ev.target.name;
    if (!name) return;
    const slot = form.querySelector(`.field-error[data-for="${CSS.escape(name)}"]`);
    if (slot) slot.textContent = "";
    for (const el of form.querySelectorAll(`[name="${CSS.escape(name)}"][aria-invalid]`)) el.removeAttribute("aria-invalid");
  };
  form.addEventListener("input", clear);
  form.addEventListener("change", clear);
}

export function showError(form, err) {
  clearOnInput(form);
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
