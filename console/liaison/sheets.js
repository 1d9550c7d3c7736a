// Taking an action: on scene with the location when allowed, and the report / decline sheets with their chips.
import { lang } from "/shared/i18n.js";
import { h } from "/shared/dom.js";
import { $, S, callNumber, conn, targetName, toast } from "./state.js";
import { tt } from "./strings.js";
import { Alerts } from "./alerts.js";
import { send } from "./outbox.js";
import { photoPicker, uploadFile } from "/shared/evidence.js";
import { t } from "/shared/i18n.js";

function getPosition() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(null);
    let done = false;
    const finish = (v) => { if (!done) { done = true; resolve(v); } };
    setTimeout(() => finish(null), 6000);
    try {
      navigator.geolocation.getCurrentPosition(
        (p) => finish({ lat: Math.round(p.coords.latitude * 1e6) / 1e6, lon: Math.round(p.coords.longitude * 1e6) / 1e6 }),
        () => finish(null), { enableHighAccuracy: true, timeout: 5000, maximumAge: 60000 });
    } catch { finish(null); }
  });
}

/** Whether photos can be uploaded now: they go up before the action, and that needs the hub. */
export function canUpload() {
  return navigator.onLine && conn && conn.status === "live";
}

/** Upload the chosen photos, then send the action with them; photos never wait in the offline queue. */
async function withPhotos(picker, errorEl, sendIt) {
  if (!picker.files.length) { sendIt([]); return true; }
  if (!canUpload()) { errorEl.textContent = t("ev.offline"); return false; }
  errorEl.textContent = t("ev.uploading");
  try {
    const ids = await picker.upload();
    errorEl.textContent = "";
    sendIt(ids);
    return true;
  } catch (e) {
    errorEl.textContent = t("ev.uploadFailed", { reason: e.message || String(e) });
    return false;
  }
}

/** 报到 with photos taken on scene (the camera button next to 报到). */
export async function arriveWithPhotos(a, files) {
  if (!files.length) return;
  if (!canUpload()) { toast(t("ev.offline"), "warn"); return; }
  toast(t("ev.uploading"));
  let ids;
  try {
    ids = [];
    for (const f of files) ids.push((await uploadFile(f)).id);
  } catch (e) {
    toast(t("ev.uploadFailed", { reason: e.message || String(e) }), "bad");
    return;
  }
  await arrive(a, { attachments: ids });
}

export async function arrive(a, extra = {}) {
  if (S.busy.has(a.id)) return;
  S.busy.add(a.id);
  let perm = "prompt";
  try {
    if (navigator.permissions) perm = (await navigator.permissions.query({ name: "geolocation" })).state;
  } catch { /* unsupported: ask */ }
  let pos = null;
  if (perm !== "denied" && navigator.geolocation) {
    toast(tt("li.locating"));
    pos = await getPosition();
  }
  S.busy.delete(a.id);
  send(a, "arrive", pos ? { lat: pos.lat, lon: pos.lon, ...extra } : extra);
  if (conn.status === "live") toast(tt(pos ? "li.withLoc" : "li.noLoc"));
}

let sheetTarget = null;

export function openSheet(kind, a) {
  sheetTarget = a;
  Alerts.stop(a.id);
  const dlg = $(`${kind}-sheet`);
  $(`${kind}-call`).textContent = [callNumber(a.call.number), a.call.title].filter(Boolean).join(" · ");
  $(`${kind}-error`).textContent = "";
  if (kind === "report") { $("report-text").value = ""; reportPhotos.clear(); }
  if (kind === "decline") {
    $("decline-reason").value = "";
    const sel = $("decline-target");
    sel.replaceChildren(h("option", { value: "" }, tt("li.declineNone")));
    const tw = S.ref && (S.ref.townships || []).find((x) => x.id === a.township_id);
    const deps = tw ? tw.departments : (S.ref ? S.ref.departments.map((d) => d.code) : []);
    for (const code of deps) if (code !== S.me.target) sel.append(h("option", { value: code }, targetName(code)));
    const units = tw ? (typeof tw.units === "string" ? JSON.parse(tw.units) : tw.units || []) : [];
    for (const u of units) {
      const code = `unit:${u.id}`;
      if (code !== S.me.target) sel.append(h("option", { value: code }, lang() === "en" ? u.name_en : u.name_zh));
    }
  }
  dlg.showModal();
  setTimeout(() => $(kind === "report" ? "report-text" : "decline-reason").focus(), 50);
}

let reportPhotos = null;

export function setupSheets() {
  reportPhotos = photoPicker();
  $("report-photos").replaceChildren(reportPhotos.root);
  for (const [kind, chips, field] of [["report", ["r1", "r2", "r3", "r4"], "report-text"],
                                       ["decline", ["d1", "d2", "d3"], "decline-reason"]]) {
    const box = $(`${kind}-chips`);
    for (const c of chips) {
      box.append(h("button", { type: "button", class: "chip", onclick: () => {
        const el = $(field);
        el.value = el.value.trim() ? `${el.value.trim()}；${tt(`li.chip.${c}`)}` : tt(`li.chip.${c}`);
        $(`${kind}-error`).textContent = "";
      } }, tt(`li.chip.${c}`)));
    }
    const dlg = $(`${kind}-sheet`);
    for (const btn of dlg.querySelectorAll("[data-close]")) btn.addEventListener("click", () => dlg.close());
    dlg.addEventListener("click", (e) => { if (e.target === dlg) dlg.close(); }); // tap on the backdrop
  }
  $("report-form").addEventListener("submit", async (e) => {
    const text = $("report-text").value.trim();
    if (!text) { e.preventDefault(); $("report-error").textContent = tt("li.required"); return; }
    if (!reportPhotos.files.length) { send(sheetTarget, "report_result", { result: text }); return; }
    e.preventDefault(); // the photos go up first; the sheet closes once the action is sent
    const target = sheetTarget;
    const sent = await withPhotos(reportPhotos, $("report-error"),
      (ids) => send(target, "report_result", { result: text, attachments: ids }));
    if (sent) $("report-sheet").close();
  });
  $("decline-form").addEventListener("submit", (e) => {
    const reason = $("decline-reason").value.trim();
    if (!reason) { e.preventDefault(); $("decline-error").textContent = tt("li.required"); return; }
    const target = $("decline-target").value;
    send(sheetTarget, "decline", target ? { reason, suggested_target: target } : { reason });
  });
}
