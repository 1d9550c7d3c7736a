// The call list: my assignments as cards (to act on, waiting, finished), and the connection indicator.
import { $, ACTIONABLE, CALL_FINAL, S, WAITING, conn } from "./state.js";
import { tt } from "./strings.js";
import { Alerts } from "./alerts.js";
import { effectiveState, renderPending } from "./outbox.js";
import { card, tickDue } from "./card.js";
import { renderDetail } from "./detail.js";
import { showLoadState } from "/shared/loadstate.js";
import { loadList } from "./sync.js";

/** The list's state: loading (first load, nothing cached), failed with 重试, empty, or ok; reconnecting is the
 *  offline banner (renderStatus). */
function renderListState(activeCount) {
  const box = $("list-state");
  if (S.listError) {
    showLoadState(box, "failed", { error: S.listError, loadedAt: S.listLoadedAt || null,
                                   retry: () => { S.listError = null; render(); loadList(); } });
  } else if (!S.listLoadedAt && !S.asg.size) {
    showLoadState(box, "loading");
  } else {
    showLoadState(box, "ok");
  }
  $("active-empty").hidden = activeCount > 0 || Boolean(S.listError) || (!S.listLoadedAt && !S.asg.size);
}

function sortedAssignments() {
  const all = [...S.asg.values()];
  const rank = (a) => {
    const st = effectiveState(a);
    if (CALL_FINAL.includes(a.call.state)) return 3;
    if (ACTIONABLE.includes(st)) return 0;
    if (WAITING.includes(st)) return 1;
    return 3;
  };
  all.sort((x, y) => rank(x) - rank(y) || (y.dispatched_at || 0) - (x.dispatched_at || 0));
  return all.map((a) => [a, rank(a)]);
}

export function render() {
  if (!S.me) return;
  for (const id of [...Alerts.ringing]) {
    const a = S.asg.get(id);
    if (!a || effectiveState(a) !== "dispatched" || CALL_FINAL.includes(a.call.state)) Alerts.stop(id);
  }
  renderPending();
  const active = [];
  const done = [];
  for (const [a, rank] of sortedAssignments()) (rank < 3 ? active : done).push(card(a));
  $("active").replaceChildren(...active);
  renderListState(active.length);
  $("done").replaceChildren(...done.slice(0, 30));
  $("done-title").textContent = tt("li.done", { n: done.length });
  $("done-wrap").parentElement.hidden = done.length === 0;
  if (S.view) renderDetail();
  tickDue();
}

export function renderStatus() {
  const status = conn ? conn.status : "connecting";
  const offline = status === "offline" || !navigator.onLine;
  const shown = offline ? "offline" : status;
  $("conn").dataset.status = shown;
  $("conn-text").textContent = tt(`li.status.${shown}`);
  $("offline-banner").hidden = !offline;
  $("offline-banner").textContent = tt("li.offlineBanner");
  renderPending();
}
