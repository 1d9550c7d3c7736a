// My assignments kept current: the REST list merged in, events from the hub applied, reloads debounced.
import { ACTIONABLE, CALL_FIELDS, S, WAITING, api, ms, now, persist } from "./state.js";
import { flushAlerts, loudEvent, reconcileLoud, restoreLoud } from "./alerts.js";
import { render } from "./list.js";
import { loadDetail } from "./detail.js";

function pickCall(doc) {
  const c = {};
  for (const f of CALL_FIELDS) if (f in doc) c[f] = doc[f];
  c.id = doc.id;
  return c;
}

/** Merge the REST list (calls newest first) into the local assignments of my target. */
export function mergeCalls(calls) {
  const fromRest = new Set();
  for (const doc of calls) {
    for (const a of doc.assignments || []) {
      if (a.target !== S.me.target) continue;
      fromRest.add(a.id);
      const old = S.asg.get(a.id);
      const seq = doc.last_seq || 0;
      if (old && (old._seq || 0) > seq) continue; // an event newer than this read already arrived
      S.asg.set(a.id, {
        ...a, township_id: doc.township_id, _seq: seq,
        dispatched_at: ms(a.dispatched_at), ack_due: ms(a.ack_due), arrive_due: ms(a.arrive_due),
        resolve_due: ms(a.resolve_due), acknowledged_at: ms(a.acknowledged_at), on_scene_at: ms(a.on_scene_at),
        reported_at: ms(a.reported_at), call: pickCall(doc),
      });
    }
  }
  for (const [id, a] of S.asg) {
    if (!fromRest.has(id) && !ACTIONABLE.includes(a.state) && !WAITING.includes(a.state)) S.asg.delete(id);
  }
}

let listLoading = null;
export async function loadList() {
  if (listLoading) return listLoading;
  listLoading = (async () => {
    try {
      const data = await api("/api/v1/calls?limit=200");
      S.listError = null;
      S.listLoadedAt = now();
      mergeCalls(data.calls || []);
      // An assignment never shown on this phone that still waits for acknowledgement rings, whether it
      // came as a live event or was dispatched while the page was closed.
      for (const a of S.asg.values()) if (!S.seen.has(a.id)) S.fresh.add(a.id);
      persist();
      render();
      flushAlerts();
      reconcileLoud();
    } catch (e) {
      // Said over the list with 重试 (./list.js renderListState); cards cached on the phone stay, marked as such.
      if (e.message !== "unauthenticated") S.listError = e;
      render();
    } finally {
      listLoading = null;
      restoreLoud(); // once: the loud alerts not yet dismissed, from before a reload (offline too)
    }
  })();
  return listLoading;
}

// -- events from the hub -----------------------------------------------------------------------------

export function applyEvent(ev) {
  const type = ev.event_type;
  const b = ev.body || {};
  if (typeof ev.at === "number" && ev.at > now()) S.skew += ev.at - now(); // the hub's clock is the one that counts
  let touched = false;
  if (ev.assignment_id) {
    let a = S.asg.get(ev.assignment_id);
    if (type === "assignment.dispatched") {
      if (b.target !== S.me.target) return;
      a = {
        ...(a || {}), id: ev.assignment_id, call_id: ev.call_id, township_id: ev.township_id, target: b.target,
        state: ev.assignment_state, dispatched_at: ev.at, ack_due: ms(b.ack_due), arrive_due: ms(b.arrive_due),
        resolve_due: ms(b.resolve_due), transferred_from: b.transferred_from || null, lead: b.lead, _seq: ev.seq,
        call: { ...((a && a.call) || {}), ...(b.call || {}), id: ev.call_id, state: ev.call_state,
                township_id: ev.township_id },
      };
      S.asg.set(a.id, a);
      if (!S.seen.has(a.id)) S.fresh.add(a.id);
      touched = true;
    } else if (a) {
      a.state = ev.assignment_state || a.state;
      a.call.state = ev.call_state || a.call.state;
      a._seq = ev.seq;
      const acted = b.acted_at ? ms(b.acted_at) : ev.at; // when the person acted (sent by a phone that was offline)
      if (type === "assignment.acknowledged") a.acknowledged_at = acted;
      else if (type === "assignment.arrived") a.on_scene_at = acted;
      else if (type === "assignment.reported") { a.reported_at = acted; a.result = b.result; }
      else if (type === "assignment.escalated") a.levels = { ...(a.levels || {}), [b.deadline_kind]: b.level };
      else if (type === "assignment.declined") { a.decline_reason = b.reason; a.suggested_target = b.suggested_target; }
      else if (type === "assignment.reopened" && b.resolve_due) a.resolve_due = ms(b.resolve_due);
      else if (type === "assignment.transfer_rejected") { // 驳回: the countdown continues, shifted by the wait
        a.ack_due = ms(b.ack_due); a.arrive_due = ms(b.arrive_due); a.resolve_due = ms(b.resolve_due);
        a.decline_reason = null; a.suggested_target = null;
      }
      for (const [kind, voided] of Object.entries(b.voids_escalations || {})) {
        a.levels = { ...(a.levels || {}), [kind]: Math.min((a.levels || {})[kind] || 0, Math.min(...voided) - 1) };
      }
      loudEvent(ev, a); // escalated, 催办, sent back, withdrawn or cancelled, transfer rejected: loudly, with the reason
      touched = true;
    } else {
      scheduleListReload();
    }
  } else {
    for (const a of S.asg.values()) {
      if (a.call_id === ev.call_id) {
        a.call.state = ev.call_state || a.call.state;
        if (ev.event_type === "call.lead_changed") a.lead = a.id === b.assignment_id;
        a._seq = Math.max(a._seq || 0, ev.seq);
        touched = true;
      }
    }
  }
  if (touched) {
    persist();
    render();
    reconcileLoud();
  }
  if (S.view === ev.call_id) scheduleDetailReload();
  if (S.caughtUp) flushAlerts();
}

let listTimer = null;
export function scheduleListReload() {
  clearTimeout(listTimer);
  listTimer = setTimeout(loadList, 300);
}

let detailTimer = null;
export function scheduleDetailReload() {
  clearTimeout(detailTimer);
  detailTimer = setTimeout(() => S.view && loadDetail(S.view), 300);
}
