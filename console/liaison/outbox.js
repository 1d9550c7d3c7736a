// The outbox view: commands queued on this phone (sent when the network is back) or refused by the hub,
// and how they change what the page shows before the hub answers.
import { h } from "/shared/dom.js";
import { NEXT_STATE, S, $, conn, fmtTime, toast } from "./state.js";
import { errorText, tt } from "./strings.js";
import { Alerts } from "./alerts.js";
import { render } from "./list.js";

export function pendingFor(assignmentId) {
  return conn ? conn.pending().filter((p) => p.args && p.args.assignment_id === assignmentId) : [];
}

/** The state the assignment will be in once the commands queued on this phone reach the hub. */
export function effectiveState(a) {
  let s = a.state;
  for (const p of pendingFor(a.id)) if (p.state === "pending" && NEXT_STATE[p.name]) s = NEXT_STATE[p.name];
  return s;
}

export function send(a, name, extra = {}) {
  Alerts.stop(a.id);
  const wasLive = conn.status === "live";
  const label = tt(`li.actLong.${name}`);
  // Stamped at the tap, on the hub's clock: a command queued offline still counts from when the person acted.
  conn.command(name, { assignment_id: a.id, acted_at: Math.round(conn.hubNow()), ...extra }).then(
    () => toast(tt("li.sentToast", { action: label }), "ok"),
    (err) => toast(tt("li.refusedToast", { action: label, reason: errorText(err) }), "bad"),
  );
  if (!wasLive) toast(tt("li.queuedToast"), "warn");
  render();
}

/** 响应 tapped on a notification that the service worker could not send (offline, hub down): queued here with
 * the worker's command id (a retry of one it did send has no second effect) and the tap's time. */
export function ackFromNotification({ assignment_id, command_id, clicked_at }) {
  if (!conn || !assignment_id || !command_id) return;
  Alerts.stop(assignment_id);
  const label = tt("li.actLong.acknowledge");
  const tapped = Number(clicked_at) || Date.now();
  conn.command("acknowledge", { assignment_id, acted_at: Math.round(conn.hubNow() - Date.now() + tapped) },
    { commandId: command_id }).then(
    () => toast(tt("li.sentToast", { action: label }), "ok"),
    (err) => toast(tt("li.refusedToast", { action: label, reason: errorText(err) }), "bad"),
  );
  if (conn.status !== "live") toast(tt("li.queuedToast"), "warn");
  render();
}

export function renderPending() {
  const items = conn ? conn.pending() : [];
  const box = $("pending");
  box.hidden = items.length === 0;
  const queued = items.filter((p) => p.state === "pending").length;
  const refused = items.length - queued;
  $("pending-title").textContent = [queued ? tt("li.pendingTitle", { n: queued }) : "",
    refused ? tt("li.refusedTitle", { n: refused }) : ""].filter(Boolean).join(" · ");
  const list = $("pending-list");
  list.replaceChildren(...items.map((p) => {
    const a = p.args && S.asg.get(p.args.assignment_id);
    const what = a ? (a.call.title || a.call.number) : (p.args && p.args.assignment_id) || "";
    const refusedItem = p.state === "refused";
    return h("li", { class: `pending-item ${refusedItem ? "refused" : ""}`, dataset: { command: p.command_id, name: p.name, state: p.state } },
      h("div", { class: "pending-main" },
        h("strong", {}, tt(`li.actLong.${p.name}`)), " · ", what,
        h("div", { class: "pending-sub" }, fmtTime(p.queued_at), " · ",
          refusedItem ? tt("li.refused", { reason: errorText(p.error) })
            : conn.status === "live" ? tt("li.pendingSending") : tt("li.pendingQueued"))),
      refusedItem ? h("button", { type: "button", class: "btn small", onclick: () => { conn.dismiss(p.command_id); render(); } },
        tt("li.dismiss")) : null);
  }));
}
