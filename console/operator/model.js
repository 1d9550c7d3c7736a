// The open calls kept current: commands (socket or REST), the REST load, events folded into call documents.
import { uuid4 } from "/shared/uuid.js";
import { t } from "/shared/i18n.js";
import { ASG_TIME, FINAL_CALL, S, api, conn, now } from "./state.js";
import { render, renderBoardState, scheduleRender } from "./board.js";
import { detailEvent, setDetail } from "./drawer.js";
import { alarmHandled, raiseAlarm, reconcileAlarms } from "./escalations.js";
import { noticeEvent } from "./notify.js";

const CALL_CMDS = new Set(["dispatch", "accept", "send_back", "return_visit", "close", "cancel", "note", "set_lead"]);

function restPath(name, args) {
  if (name === "create_call") return ["/api/v1/calls", args];
  const rest = { ...args };
  if (CALL_CMDS.has(name)) { delete rest.call_id; return [`/api/v1/calls/${args.call_id}/${name}`, rest]; }
  delete rest.assignment_id;
  return [`/api/v1/assignments/${args.assignment_id}/${name}`, rest];
}

/** Run one command: over the live socket (outbox, re-sent after reconnects) or REST with the same id. */
export async function run(name, args, commandId = uuid4()) {
  if (conn.status === "live") {
    try {
      return await conn.command(name, args, { commandId });
    } catch (err) {
      conn.dismiss(commandId); // this page shows the refusal itself, next to the field
      throw { ...err, field: err.field ? String(err.field).replace(/^args\./, "") : null };
    }
  }
  const [path, body] = restPath(name, args);
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const out = await api("POST", path, { command_id: commandId, ...body });
      const callId = out.call_id || args.call_id || S.detail?.id;
      if (callId) refreshCall(callId); // no live channel: fetch the result ourselves
      return out;
    } catch (err) {
      if (err && err.code) throw err; // an answer from the hub: do not retry
      lastErr = err;
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    }
  }
  throw { code: "network", message: t("network"), field: null, cause: lastErr };
}

/** Create a call, offline too. Live: over the socket. Not live but the browser online: one REST try. Offline (or the
 *  hub unreachable): queued in the connection's persistent outbox with its command id — shown as 待发送 on the board
 *  and sent when the socket is back, exactly once (the hub stores the id; a re-send has no second effect).
 *  `onQueued` is called when it was queued; the promise settles when the hub answers. */
export async function createCall(args, { onQueued = () => {} } = {}) {
  const commandId = uuid4();
  if (conn.status === "live") return run("create_call", args, commandId);
  if (navigator.onLine) {
    try {
      const out = await api("POST", "/api/v1/calls", { command_id: commandId, ...args });
      if (out.call_id) refreshCall(out.call_id);
      return out;
    } catch (err) {
      if (err && err.code && err.code !== "unavailable") throw err; // the hub answered: a refusal, next to the field
    }
  }
  const done = conn.command("create_call", args, { commandId });
  onQueued(commandId);
  const out = await done;
  if (out.call_id) refreshCall(out.call_id);
  return out;
}

// -- state: load, events -----------------------------------------------------------------------------

/** 重试 on the board's failed state. */
export function retryLoad() {
  S.loadError = null;
  renderBoardState();
  return loadAll();
}

export async function loadAll() {
  if (S.loading) { S.reloadAgain = true; return S.loading; }
  S.buffer = [];
  S.loading = (async () => {
    try {
      const data = await api("GET", "/api/v1/calls?open=true&limit=500");
      const fresh = new Map(data.calls.map((c) => [c.id, c]));
      for (const ev of S.buffer) applyToMap(fresh, ev);
      S.calls = fresh;
      S.loaded = true;
      S.loadedAt = now();
      S.loadError = null;
      render();
    } catch (err) {
      // Said on the board itself, with 重试 (./board.js renderBoardState): a failed load never reads as "no calls".
      S.loadError = err;
      renderBoardState();
    } finally {
      S.loading = null;
      S.buffer = [];
    }
    if (S.reloadAgain) { S.reloadAgain = false; await loadAll(); }
    reconcileAlarms();
  })();
  return S.loading;
}

export async function refreshCall(id) {
  if (S.fetching.has(id)) return;
  S.fetching.set(id, []);
  try {
    const doc = await api("GET", `/api/v1/calls/${id}`);
    const queued = S.fetching.get(id) || [];
    const { timeline, ...call } = doc;
    for (const ev of queued) applyEvent(call, ev);
    if (FINAL_CALL.has(call.state)) S.calls.delete(id);
    else S.calls.set(id, call);
    if (S.detail && S.detail.id === id) setDetail(doc, queued);
  } catch (err) {
    if (err.code === "not_found") S.calls.delete(id);
  } finally {
    S.fetching.delete(id);
    render();
    reconcileAlarms();
  }
}

/** Fold one event message into a call document (the REST shape). Returns false when it cannot. */
export function applyEvent(call, ev) {
  if (ev.seq <= (call.last_seq || 0)) return true; // already in the document
  const at = new Date(ev.at).toISOString();
  const b = ev.body || {};
  call.state = ev.call_state;
  call.updated_at = at;
  call.last_seq = ev.seq;
  if (ev.assignment_id) {
    let a = call.assignments.find((x) => x.id === ev.assignment_id);
    if (ev.event_type === "assignment.dispatched") {
      if (!a) {
        a = { id: ev.assignment_id, call_id: call.id, target: b.target, levels: { ack: 0, arrive: 0, resolve: 0 },
              dispatched_at: at, ack_due: b.ack_due, arrive_due: b.arrive_due, resolve_due: b.resolve_due,
              transferred_from: b.transferred_from ?? null, decline_reason: null, suggested_target: null, result: null,
              lead: b.lead ?? false, visit: null, reopened: 0, declined_at: null, review_due: null };
        call.assignments.push(a);
        if (a.lead) for (const x of call.assignments) x.lead = x === a;
      }
    } else if (!a) {
      return false;
    }
    a.state = ev.assignment_state;
    a.updated_at = at;
    // A liaison's action counts from when the person acted (a phone that was offline sends acted_at).
    if (ASG_TIME[ev.event_type]) a[ASG_TIME[ev.event_type]] = b.acted_at ? new Date(b.acted_at).toISOString() : at;
    if (ev.event_type === "assignment.escalated") a.levels = { ...a.levels, [b.deadline_kind]: b.level };
    for (const [kind, voided] of Object.entries(b.voids_escalations || {})) {
      a.levels = { ...a.levels, [kind]: Math.min(a.levels?.[kind] || 0, Math.min(...voided) - 1) };
    }
    if (ev.event_type === "assignment.reported") a.result = b.result;
    if (ev.event_type === "assignment.declined") {
      a.decline_reason = b.reason; a.suggested_target = b.suggested_target ?? null;
      a.declined_at = at; a.review_due = b.review_due ?? null;
      const { review, ...levels } = a.levels || {}; a.levels = levels;
    }
    if (ev.event_type === "assignment.transfer_rejected") { // 驳回: deadlines moved by the time waited
      a.ack_due = b.ack_due; a.arrive_due = b.arrive_due; a.resolve_due = b.resolve_due;
      a.decline_reason = null; a.suggested_target = null; a.declined_at = null; a.review_due = null;
    }
    if (ev.event_type === "assignment.reopened") {
      a.reported_at = null; a.accepted_at = null;
      if (b.resolve_due) a.resolve_due = b.resolve_due;
      if (b.cause === "return_visit") a.reopened = (a.reopened || 0) + 1;
      a.levels = { ...a.levels, resolve: 0 };
    }
  } else if (ev.event_type === "call.visited") {
    call.resolved = b.resolved; call.satisfaction = b.satisfaction; call.visit_comment = b.comment ?? null;
    for (const r of b.ratings || []) {
      const a = call.assignments.find((x) => x.id === r.assignment_id);
      if (a) a.visit = { resolved: r.resolved, satisfaction: r.satisfaction, comment: r.comment ?? null, at };
    }
  } else if (ev.event_type === "call.lead_changed") {
    for (const x of call.assignments) x.lead = x.id === b.assignment_id;
  } else if (ev.event_type === "call.cancelled") {
    call.cancel_reason = b.reason; call.closed_at = at;
  } else if (ev.event_type === "call.closed") {
    call.closed_at = at; call.close_reason = b.reason ?? null;
  }
  return true;
}

function callFromCreated(ev) {
  const b = ev.body || {};
  return { id: ev.call_id, township_id: ev.township_id, number: b.number, state: ev.call_state, source: b.source,
           category: b.category, title: b.title, description: b.description || "", address: b.address || "",
           priority: b.priority, reporter_name: b.reporter_name ?? null, reporter_phone: b.reporter_phone ?? null,
           lat: b.lat ?? null, lon: b.lon ?? null, created_at: new Date(ev.at).toISOString(),
           updated_at: new Date(ev.at).toISOString(), assignments: [], last_seq: ev.seq };
}

function applyToMap(map, ev) {
  let call = map.get(ev.call_id);
  if (!call && ev.event_type === "call.created") {
    call = callFromCreated(ev);
    map.set(call.id, call);
    S.flash.add(call.id);
    return true;
  }
  if (!call) return false;
  if (!applyEvent(call, ev)) return false;
  if (FINAL_CALL.has(call.state)) map.delete(call.id);
  return true;
}

export function onEvent(ev) {
  if (ev.at > now()) S.skew += ev.at - now(); // the hub's clock is the one that counts
  S.seen += 1;
  if (S.loading) S.buffer.push(ev);
  if (S.fetching.has(ev.call_id)) {
    S.fetching.get(ev.call_id).push(ev);
  } else if (!applyToMap(S.calls, ev) && !FINAL_CALL.has(ev.call_state)) {
    refreshCall(ev.call_id); // a call we do not hold (or an assignment we missed): ask the hub
  }
  if (S.detail && S.detail.id === ev.call_id) detailEvent(ev);
  // a rung recorded after the department already responded (late_record) is history, not an alarm
  if (ev.event_type === "assignment.escalated" && !ev.body?.late_record) raiseAlarm(ev);
  if (ev.event_type === "assignment.alarm_handled") alarmHandled(ev);
  if (ev.event_type === "notice.sent" || ev.event_type === "notice.failed") noticeEvent();
  reconcileAlarms(); // an alarm whose clock this event stopped (or whose rung it voided) clears itself
  scheduleRender();
}
