// The one real-time connection module of the three consoles (protocol xianghu.v1, see protocols/PROTOCOL.md).
//
//   const conn = new Connection();            // cookie auth, same origin
//   conn.addEventListener("event", (e) => apply(e.detail));
//   conn.addEventListener("resync", (e) => reloadTownship(e.detail.township_id));
//   conn.start();
//   await conn.command("acknowledge", { assignment_id });
//
// Events (all CustomEvent, payload in .detail):
//   status    {status}                "connecting" (from construction until the first socket is live or
//                                     fails: a first load is not a disconnection) | "live" | "offline"
//   welcome   the welcome message
//   event     one event message, de-duplicated by (township_id, seq) against the persisted cursor
//   caught_up the caught_up message (replay finished, live from now on)
//   resync    {township_id, reason, head}: reload that township over REST. Besides the hub's own resync,
//             the module emits one with reason "no_cursor" for a township it has no cursor for (first
//             visit: it subscribes from the head, so the page must load the state over REST) and
//             "epoch_changed" when the welcome's epoch differs from the stored one.
//   presence  the presence message
//   pending   {pending}: the outbox changed (see pending())
//   error     an error frame that is not about a command (protocol, rate_limited)
//
// Cursors (per township, with the epoch) and the command outbox live in localStorage under storageKey,
// so a page reload resumes from the last event seen and re-sends commands that were never answered.
import { encode, decode } from "/vendor/msgpack/index.mjs";
import { readJSON, writeJSON } from "/shared/storage.js";
import { uuid4 } from "/shared/uuid.js";
import { lang as uiLang } from "/shared/i18n.js";

export { uuid4 };

export const SUBPROTOCOL = "xianghu.v1";
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30000;
const COMMAND_TIMEOUT_MS = 10000;
const LOGIN_CLOSE_CODES = new Set([4001, 4010]);
const NO_RETRY_CLOSE_CODES = new Set([1002, 1008, 4002, 4013]);  // 4013: another tab or device of this account took over

export class Connection extends EventTarget {
  constructor({ url = "/ws", token = null, storageKey = "xianghu.conn" } = {}) {
    super();
    this._url = url;
    this._token = token;
    this._key = storageKey;
    this._ws = null;
    this._status = "connecting";
    this._welcome = null;
    this._running = false;
    this._attempt = 0;
    this._timer = null;
    this._heartbeat = null;
    this._lastRx = 0;
    this._lastTx = 0;
    this._inflight = new Map(); // command_id -> sent at (ms), for the current socket only
    this._waiters = new Map(); // command_id -> {resolve, reject}
    const stored = readJSON(`${this._key}.cursors`, {});
    this._epoch = stored.epoch ?? null;
    this._user = stored.user ?? null;
    this._cursors = new Map(Object.entries(stored.cursors || {}).map(([k, v]) => [Number(k), Number(v)]));
    this._outbox = readJSON(`${this._key}.outbox`, []);
    this._onOnline = () => {
      if (this._running && this._status === "offline") this._connectNow();
    };
    this._onOffline = () => {
      if (this._ws) this._ws.close(1000, "browser offline");
    };
  }

  // -- public API ----------------------------------------------------------------------------

  get status() {
    return this._status;
  }

  /** Now on the hub's clock, as best this device knows it (its own clock corrected by the last welcome). */
  hubNow() {
    if (this._skewMs === undefined) this._skewMs = Number(readJSON(`${this._key}.skew`, 0)) || 0;
    return Date.now() + this._skewMs;
  }

  get welcome() {
    return this._welcome;
  }

  /** The cursor (last seq seen) of a township, 0 when none. */
  cursor(townshipId) {
    return this._cursors.get(Number(townshipId)) || 0;
  }

  start() {
    if (this._running) return;
    this._running = true;
    window.addEventListener("online", this._onOnline);
    window.addEventListener("offline", this._onOffline);
    this._connectNow();
  }

  stop() {
    this._running = false;
    window.removeEventListener("online", this._onOnline);
    window.removeEventListener("offline", this._onOffline);
    clearTimeout(this._timer);
    this._timer = null;
    if (this._ws) {
      const ws = this._ws;
      this._detach();
      try {
        ws.close(1000, "client stopped");
      } catch {
        /* already closed */
      }
    }
    this._setStatus("offline");
  }

  /** Queue a command (persisted first), send it when live; resolves with the result map. */
  command(name, args = {}, { commandId } = {}) {
    const command_id = commandId || uuid4();
    let entry = this._outbox.find((c) => c.command_id === command_id);
    if (!entry) {
      entry = { command_id, name, args, queued_at: Date.now(), state: "pending", error: null,
                user_id: this._welcome ? this._welcome.user.id : this._user };
      this._outbox.push(entry);
      this._saveOutbox();
    }
    const promise = new Promise((resolve, reject) => {
      const prev = this._waiters.get(command_id);
      this._waiters.set(command_id, {
        resolve: (v) => { prev && prev.resolve(v); resolve(v); },
        reject: (e) => { prev && prev.reject(e); reject(e); },
      });
    });
    if (entry.state === "refused") {
      this._settle(command_id, false, entry.error);
    } else {
      this._flush();
    }
    return promise;
  }

  pending() {
    return this._outbox.map(({ command_id, name, args, queued_at, state, error }) =>
      ({ command_id, name, args, queued_at, state, error }));
  }

  dismiss(commandId) {
    const before = this._outbox.length;
    this._outbox = this._outbox.filter((c) => !(c.command_id === commandId && c.state === "refused"));
    if (this._outbox.length !== before) this._saveOutbox();
  }

  // -- socket life cycle -------------------------------------------------------------------------

  _wsURL() {
    const u = new URL(this._url, location.href);
    if (u.protocol === "http:") u.protocol = "ws:";
    if (u.protocol === "https:") u.protocol = "wss:";
    if (this._token) u.searchParams.set("token", this._token);
    u.searchParams.set("lang", uiLang()); // error frames in the UI's language
    return u.toString();
  }

  _connectNow() {
    clearTimeout(this._timer);
    this._timer = null;
    if (!this._running || this._ws) return;
    this._setStatus("connecting");
    let ws;
    try {
      ws = new WebSocket(this._wsURL(), SUBPROTOCOL);
    } catch {
      this._scheduleReconnect();
      return;
    }
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    this._inflight = new Map();
    this._welcome = null;
    this._lastRx = Date.now();
    ws.onmessage = (ev) => this._onFrame(ws, ev.data);
    ws.onclose = (ev) => this._onClose(ws, ev);
    ws.onerror = () => {
      /* onclose follows */
    };
  }

  _detach() {
    const ws = this._ws;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
    }
    this._ws = null;
    this._inflight = new Map();
    clearInterval(this._heartbeat);
    this._heartbeat = null;
  }

  _onClose(ws, ev) {
    if (ws !== this._ws) return;
    this._detach();
    this._setStatus("offline");
    if (!this._running) return;
    if (LOGIN_CLOSE_CODES.has(ev.code)) {
      this._running = false;
      location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      return;
    }
    if (NO_RETRY_CLOSE_CODES.has(ev.code)) {
      // A client fault or a refused origin: retrying in a loop would not help; try again much later.
      this._attempt = Math.max(this._attempt, 8);
    }
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    if (!this._running) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this._attempt);
    const delay = base / 2 + Math.random() * (base / 2); // "equal jitter"
    this._attempt += 1;
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._connectNow(), delay);
  }

  _send(msg) {
    if (!this._ws || this._ws.readyState !== WebSocket.OPEN) return false;
    this._ws.send(encode(msg));
    this._lastTx = Date.now();
    return true;
  }

  _startHeartbeat(limits) {
    const beatMs = Math.max(1, Number(limits?.heartbeat_s) || 20) * 1000;
    clearInterval(this._heartbeat);
    this._heartbeat = setInterval(() => {
      const now = Date.now();
      if (now - this._lastRx > 2 * beatMs) {
        if (this._ws) this._ws.close(4000, "heartbeat timeout"); // client-side: reconnect and resume
        return;
      }
      if (now - this._lastRx > beatMs && now - this._lastTx > beatMs / 2) {
        this._send({ type: "ping", nonce: now % 2147483647 });
      }
      for (const sentAt of this._inflight.values()) {
        if (now - sentAt > COMMAND_TIMEOUT_MS) {
          // Unanswered (e.g. dropped by the rate limiter): resume on a fresh socket, which re-sends it.
          if (this._ws) this._ws.close(1000, "command timeout");
          return;
        }
      }
    }, Math.min(1000, beatMs / 4));
  }

  // -- incoming frames ---------------------------------------------------------------------------

  _onFrame(ws, data) {
    if (ws !== this._ws) return;
    this._lastRx = Date.now();
    let msg;
    try {
      msg = decode(new Uint8Array(data));
    } catch {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    switch (msg.type) {
      case "welcome": return this._onWelcome(msg);
      case "event": return this._onEvent(msg);
      case "caught_up": return this._onCaughtUp(msg);
      case "resync": return this._onResync(msg);
      case "presence": return this._emit("presence", msg);
      case "result": return this._onAnswer(msg.command_id, true, msg.result || {});
      case "error":
        if (msg.command_id && (msg.code === "internal" || msg.code === "rate_limited")) {
          // Not a refusal: the hub could not do it now. Keep it queued and send it again, same id.
          this._inflight.delete(msg.command_id);
          setTimeout(() => this._flush(), msg.code === "internal" ? 5000 : 1000);
          return this._emit("error", msg);
        }
        if (msg.command_id) {
          return this._onAnswer(msg.command_id, false,
                                { code: msg.code, message: msg.message, field: msg.field ?? null });
        }
        return this._emit("error", msg);
      case "ping": return this._send({ type: "pong", nonce: msg.nonce });
      default: return undefined; // pong, and types of a later minor revision
    }
  }

  _onWelcome(msg) {
    this._welcome = msg;
    if (typeof msg.server_time === "number") {
      // How far the hub's clock is from this device's: acted times are stamped on the hub's clock.
      this._skewMs = msg.server_time - Date.now();
      writeJSON(`${this._key}.skew`, this._skewMs);
    }
    this._attempt = 0;
    const userId = msg.user ? msg.user.id : null;
    if (this._user !== null && userId !== null && this._user !== userId) {
      // Another user in this browser: the cursors and the unsent commands are not theirs.
      this._cursors.clear();
      this._epoch = null;
      this._outbox = this._outbox.filter((c) => c.user_id === userId);
      this._saveOutbox();
    }
    this._user = userId;
    const resyncs = [];
    if (this._epoch !== null && this._epoch !== msg.epoch) {
      this._cursors.clear();
      for (const [tid, head] of msg.heads || []) resyncs.push({ township_id: tid, reason: "epoch_changed", head });
    }
    this._epoch = msg.epoch;
    for (const [tid, head] of msg.heads || []) {
      if (!this._cursors.has(tid)) {
        this._cursors.set(tid, head);
        if (!resyncs.some((r) => r.township_id === tid)) resyncs.push({ township_id: tid, reason: "no_cursor", head });
      }
    }
    this._saveCursors();
    this._send({ type: "subscribe", cursors: [...this._cursors.entries()], epoch: msg.epoch });
    this._startHeartbeat(msg.limits);
    this._setStatus("live");
    this._emit("welcome", msg);
    for (const r of resyncs) this._emit("resync", { type: "resync", ...r });
    this._flush();
  }

  _onEvent(msg) {
    const tid = msg.township_id;
    if (msg.seq <= (this._cursors.get(tid) || 0)) return; // already seen (replay overlap, re-send)
    this._cursors.set(tid, msg.seq);
    this._saveCursors();
    this._emit("event", msg);
  }

  _onCaughtUp(msg) {
    for (const [tid, head] of msg.heads || []) {
      if (head > (this._cursors.get(tid) || 0)) this._cursors.set(tid, head);
    }
    this._saveCursors();
    this._emit("caught_up", msg);
  }

  _onResync(msg) {
    this._cursors.set(msg.township_id, msg.head);
    this._saveCursors();
    this._emit("resync", msg);
  }

  _onAnswer(commandId, ok, payload) {
    if (!commandId) return;
    this._inflight.delete(commandId);
    const entry = this._outbox.find((c) => c.command_id === commandId);
    if (ok) {
      this._outbox = this._outbox.filter((c) => c.command_id !== commandId);
    } else if (entry) {
      entry.state = "refused";
      entry.error = payload;
    }
    this._saveOutbox();
    this._settle(commandId, ok, payload);
  }

  _settle(commandId, ok, payload) {
    const w = this._waiters.get(commandId);
    if (!w) return;
    this._waiters.delete(commandId);
    if (ok) w.resolve(payload);
    else w.reject(payload);
  }

  // -- outbox ------------------------------------------------------------------------------------

  _flush() {
    if (this._status !== "live") return;
    for (const c of this._outbox) {
      if (c.state !== "pending" || this._inflight.has(c.command_id)) continue;
      if (this._send({ type: "command", command_id: c.command_id, name: c.name, args: c.args || {} })) {
        this._inflight.set(c.command_id, Date.now());
      }
    }
  }

  _saveOutbox() {
    writeJSON(`${this._key}.outbox`, this._outbox);
    this._emit("pending", { pending: this.pending() });
  }

  _saveCursors() {
    writeJSON(`${this._key}.cursors`, { epoch: this._epoch, user: this._user,
                                        cursors: Object.fromEntries(this._cursors) });
  }

  // -- helpers -----------------------------------------------------------------------------------

  _setStatus(status) {
    if (status === this._status) return;
    this._status = status;
    this._emit("status", { status });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
