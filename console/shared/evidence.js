// Photos and PDFs as evidence (照片 / 附件): upload one file (POST /api/v1/attachments, the raw file as the
// body), and show a call's attachments as thumbnails that open the full file. Shared by every console.
import { addStrings, langHeaders, t } from "/shared/i18n.js";
import { h } from "/shared/dom.js";

const SVG = "http://www.w3.org/2000/svg";
/** A camera drawn inline (no emoji: a phone or a kiosk without an emoji font would show a box), decorative. */
export function cameraIcon() {
  const svg = document.createElementNS(SVG, "svg");
  for (const [k, v] of Object.entries({ viewBox: "0 0 24 24", width: "1.2em", height: "1.2em", fill: "none",
    stroke: "currentColor", "stroke-width": "2", "stroke-linecap": "round", "stroke-linejoin": "round",
    "aria-hidden": "true", focusable: "false", class: "icon" })) svg.setAttribute(k, v);
  const body = document.createElementNS(SVG, "path");
  body.setAttribute("d", "M4 8h3l2-3h6l2 3h3v11H4z");
  const lens = document.createElementNS(SVG, "circle");
  for (const [k, v] of Object.entries({ cx: "12", cy: "13", r: "3.5" })) lens.setAttribute(k, v);
  svg.append(body, lens);
  return svg;
}

addStrings({
  "zh-CN": {
    "ev.title": "照片与附件", "ev.step.intake": "登记时", "ev.step.arrive": "报到", "ev.step.report_result": "办结",
    "ev.pdf": "PDF 文件", "ev.add": "拍照 / 选照片", "ev.uploading": "照片上传中…", "ev.remove": "移除",
    "ev.tooMany": "最多 {n} 个附件", "ev.uploadFailed": "照片上传失败：{reason}",
    "ev.offline": "离线时无法上传照片：请联网后再附照片，或先不带照片提交",
  },
  en: {
    "ev.title": "Photos and files", "ev.step.intake": "At intake", "ev.step.arrive": "On scene",
    "ev.step.report_result": "Result", "ev.pdf": "PDF file", "ev.add": "Take / choose a photo",
    "ev.uploading": "Uploading photos…", "ev.remove": "Remove", "ev.tooMany": "At most {n} attachments",
    "ev.uploadFailed": "Photo upload failed: {reason}",
    "ev.offline": "Photos cannot be uploaded offline: attach them once online, or send without photos",
  },
});

export const MAX_ATTACHMENTS = 9;
const STEP_OF_EVENT = { "call.created": "intake", "assignment.arrived": "arrive", "assignment.reported": "report_result" };

/** Upload one file; resolves to {id, sha256, content_type, size, width, height, url, thumbnail_url}. */
export async function uploadFile(file) {
  const res = await fetch("/api/v1/attachments", {
    method: "POST", credentials: "same-origin", body: file,
    headers: langHeaders({ "Content-Type": file.type || "application/octet-stream", Accept: "application/json" }),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(data.message || res.statusText), { status: res.status, code: data.code, data });
  return data;
}

/** The attachments an event carries (live events), in the shape the call detail lists them. */
export function fromEvent(type, body, seq, assignmentId) {
  const step = STEP_OF_EVENT[type];
  if (!step || !body || !Array.isArray(body.attachments)) return [];
  return body.attachments.map((a) => ({
    ...a, step, seq, assignment_id: assignmentId || null, url: `/api/v1/attachments/${a.id}`,
    thumbnail_url: a.content_type && a.content_type.startsWith("image/") ? `/api/v1/attachments/${a.id}/thumbnail` : null,
  }));
}

/** Thumbnails that open the full file, grouped under the step each came with; null when there are none. */
export function evidenceSection(list, { title = true, label = null } = {}) {
  if (!list || !list.length) return null;
  const items = list.map((a) => h("li", { class: "evidence-item", dataset: { attachment: a.id, step: a.step || "" } },
    h("a", { href: a.url, target: "_blank", rel: "noopener", title: a.sha256 ? `SHA-256 ${a.sha256}` : "" },
      a.thumbnail_url
        ? h("img", { src: a.thumbnail_url, alt: t(`ev.step.${a.step}`), loading: "lazy", width: 96, height: 96 })
        : h("span", { class: "evidence-file" }, t("ev.pdf"))),
    a.step || label ? h("span", { class: "evidence-step" }, label ? label(a) : t(`ev.step.${a.step}`)) : null));
  return h("section", { class: "evidence" }, title ? h("h3", {}, t("ev.title")) : null, h("ul", { class: "evidence-list" }, items));
}

/** A photo picker for a form: the camera on a phone; keeps the chosen files until `take()`. */
export function photoPicker({ onChange = () => undefined } = {}) {
  let files = [];
  const input = h("input", { type: "file", accept: "image/*", capture: "environment", multiple: true, class: "photo-input" });
  const list = h("ul", { class: "photo-list" });
  const note = h("p", { class: "photo-note", hidden: true });
  const render = () => {
    list.replaceChildren(...files.map((f, i) => {
      const url = URL.createObjectURL(f);
      return h("li", { class: "photo-chip" }, h("img", { src: url, alt: f.name, onload: () => URL.revokeObjectURL(url) }),
        h("button", { type: "button", class: "photo-remove", "aria-label": t("ev.remove"),
          onclick: () => { files.splice(i, 1); render(); } }, "×"));
    }));
    onChange(files);
  };
  input.addEventListener("change", () => {
    const chosen = [...input.files];
    input.value = "";
    if (files.length + chosen.length > MAX_ATTACHMENTS) {
      note.textContent = t("ev.tooMany", { n: MAX_ATTACHMENTS });
      note.hidden = false;
    }
    files = files.concat(chosen).slice(0, MAX_ATTACHMENTS);
    render();
  });
  const label = h("label", { class: "btn photo-add" }, cameraIcon(), " ", t("ev.add"), input);
  const root = h("div", { class: "photo-picker" }, label, list, note);
  return {
    root, input,
    get files() { return files; },
    clear() { files = []; note.hidden = true; render(); },
    say(text) { note.textContent = text; note.hidden = !text; },
    /** Upload every chosen file, in order; resolves to their ids (rejects on the first failure). */
    async upload() {
      const ids = [];
      for (const f of files) ids.push((await uploadFile(f)).id);
      return ids;
    },
  };
}
