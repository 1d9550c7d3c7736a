// 值班: who answers for each department and unit of the township (GET /api/v1/duty), who of them is online
// (counts from the hub's presence frames at once, each person's mark from the roster), and the warning shown
// while dispatching to a target with nobody online.
import { t } from "/shared/i18n.js";
import { readJSON, writeJSON } from "/shared/storage.js";
import { refName, targetName } from "/shared/format.js";
import { $, S, api, esc } from "./state.js";

const FOLD_KEY = "xianghu.operator.duty.folded";
let folded = readJSON(FOLD_KEY, false) === true;
let reloadTimer = null;

export async function loadDuty() {
  try {
    S.duty = await api("GET", `/api/v1/duty?township_id=${encodeURIComponent(S.township.id)}`);
  } catch (err) {
    console.warn("duty", err);
  }
  renderDuty();
}

/** A presence frame changed who is online: counts now, the roster's marks after a short coalescing wait. */
export function presenceChanged() {
  renderDuty();
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(loadDuty, 300);
}

/** The township's liaisons connected now, per target; undefined while the hub has not said (no warning then). */
function onlineCount(code) {
  const online = S.presence[S.township?.id];
  if (online) return online[code] || 0;
  const row = S.duty?.targets.find((x) => x.target === code);
  return row ? row.online : undefined;
}

function personHTML(p) {
  const tel = p.phone ? (S.duty.phones === "full"
    ? `<a class="tel" href="tel:${esc(p.phone.replace(/[^0-9+]/g, ""))}">${esc(p.phone)}</a>`
    : `<span class="tel">${esc(p.phone)}</span>`) : "";
  return `<li class="person ${p.online ? "on" : "off"}" data-user="${esc(p.id)}"><i></i><span class="pn">${esc(p.name)}</span>`
    + `${p.team_lead ? `<b class="lead-tag">${esc(t("teamLead"))}</b>` : ""}${tel}</li>`;
}

export function renderDuty() {
  const ul = $("#presence");
  if (!S.ref || !S.township) return;
  const fold = $("#duty-fold");
  fold.hidden = false; // shown once there is a roster to fold (an empty button has no name)
  fold.textContent = t(folded ? "dutyShow" : "dutyHide");
  fold.setAttribute("aria-expanded", String(!folded));
  const roster = new Map((S.duty?.targets || []).map((x) => [x.target, x]));
  const item = (code, name) => {
    const n = onlineCount(code) || 0;
    const people = roster.get(code)?.liaisons || [];
    return `<li class="tgt ${n ? "on" : "off"}" data-target="${esc(code)}"><div class="th"><i></i><span class="nm">${esc(name)}</span>`
      + `<span class="n">${n ? esc(t("online", { n })) : esc(t("none"))}</span></div>`
      + (folded || !people.length ? "" : `<ul class="people">${people.map(personHTML).join("")}</ul>`) + `</li>`;
  };
  const depts = S.ref.departments.filter((d) => S.township.departments.includes(d.code));
  ul.innerHTML = `<li class="grp">${esc(t("departments"))}</li>` + depts.map((d) => item(d.code, refName(d))).join("")
    + `<li class="grp">${esc(t("units"))}</li>` + (S.township.units || []).map((u) => item(`unit:${u.id}`, refName(u))).join("");
  for (const form of document.querySelectorAll("form")) if (form.querySelector("[data-offline]")) updateOfflineWarning(form);
}

$("#duty-fold").addEventListener("click", () => {
  folded = !folded;
  writeJSON(FOLD_KEY, folded);
  renderDuty();
});

// -- the warning while dispatching ------------------------------------------------------------------------

/** How the department will be told when nobody has the page open: the deployment's channels, else nothing. */
function channelsPhrase() {
  const configured = (S.notify?.channels || []).filter((c) => c.configured).map((c) => c.channel);
  return configured.length ? t("offlineVia", { channels: configured.map((c) => t("ch." + c)).join("/") }) : t("offlineWait");
}

/** Show, under the targets a form is about to dispatch to, which of them have nobody online (not a block). */
export function updateOfflineWarning(form) {
  const box = form.querySelector("[data-offline]");
  if (!box) return;
  const chosen = [...form.querySelectorAll('input[name="targets"]:checked')].map((el) => el.value);
  const select = form.querySelector('select[name="target"]');
  if (select && select.value) chosen.push(select.value);
  const nobody = chosen.filter((code) => onlineCount(code) === 0);
  box.hidden = nobody.length === 0;
  box.dataset.targets = nobody.join(" ");
  box.textContent = nobody.length
    ? t("nobodyOnline", { names: nobody.map((c) => targetName(S.idx, c)).join("、"), how: channelsPhrase() }) : "";
}

document.addEventListener("change", (e) => {
  const form = e.target.closest?.("form");
  if (form && (e.target.name === "targets" || e.target.name === "target")) updateOfflineWarning(form);
});
