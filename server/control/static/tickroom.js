// tickroom's wire protocol for browsers, written from docs/protocol.md.
//
//   const client = new TickroomClient({url: "ws://127.0.0.1:7350", room: "lobby", name: "ada"});
//   client.onSnapshot = (world, msg) => ...;   client.connect();
//   client.sendInput({mx: 1, my: 0, aim: 0.5, fire: false});
//
// It joins (or rejoins with the session token after a drop), applies every
// snapshot against the baseline it names (wire.js), acknowledges it
// (piggy-backed on the next input, or alone when no input went out since the
// previous snapshot), de-duplicates events, pings for the round-trip time,
// and follows a {"t": "redirect", "url"} message to another node.

import { decode, encode } from "./vendor/msgpack/index.mjs";
import {
  applySnapshot, buildSchema, DesyncError, encodeInputRow, entityOf, snapshotFromArray, sortedIds,
} from "./wire.js";

export { applySnapshot, buildSchema, DesyncError, entityOf, sortedIds };

export const PROTOCOL_VERSION = 2;
/** Worlds more than this many ticks older than the newest are never a baseline (6.5). */
export const SERVER_HISTORY_TICKS = 64;
export const PING_INTERVAL_MS = 1000;
/** A dropped player waits this long for a rejoin by default (3.7). */
export const REJOIN_GRACE_MS = 10000;
const REJOIN_DELAYS_MS = [0, 250, 500, 1000, 2000, 3000];

/** Close and error codes of section 8, for messages a person reads. */
export const CODES = {
  1000: "NORMAL", 1001: "GOING_AWAY", 1006: "ABNORMAL (connection lost)",
  4000: "BAD_MESSAGE", 4001: "INVALID_MESSAGE", 4002: "MESSAGE_TOO_BIG", 4003: "UNSUPPORTED_VERSION",
  4004: "HANDSHAKE_REQUIRED", 4005: "HANDSHAKE_TIMEOUT", 4006: "RATE_LIMITED", 4007: "UNAUTHORIZED",
  4008: "INVALID_TICKET", 4009: "TICKET_EXPIRED", 4010: "TICKET_WRONG_ROOM", 4011: "TOO_MANY_CONNECTIONS",
  4012: "TOO_MANY_ROOMS",
  4100: "ROOM_NOT_FOUND", 4101: "ROOM_FULL", 4102: "ROOM_CLOSED", 4103: "ROOM_CRASHED", 4104: "UNKNOWN_GAME",
  4105: "ROOM_RECOVERING", 4106: "JOIN_REJECTED", 4107: "MATCH_ENDED", 4108: "KICKED",
  4110: "SESSION_UNKNOWN", 4111: "SESSION_REPLACED", 4112: "ACK_TIMEOUT", 4113: "IDLE_TIMEOUT",
  4200: "INTERNAL_ERROR", 4201: "SERVER_FULL", 4202: "REDIRECT", 4203: "SERVER_OVERLOADED",
};
// What to do after a close (section 12): resume the session, start over, or stop.
// Any other code stops: 4203 (the node is over capacity) among them, so that
// a client never hammers an overloaded node; the page or the game asks its
// matchmaker again (or waits 5 s, section 8).
const RESUME = new Set([1006, 4112, 4113]);
const JOIN_AFRESH = new Set([1001, 4102, 4103]);

export class TickroomClient {
  /**
   * @param {object} opts url (ws://...), room (null: quick match), name, game (opt)
   */
  constructor({ url, room = null, name = "", game = null }) {
    this.url = url;
    this.joinArgs = { room, name, game };
    this.state = "idle"; // idle | connecting | joined | closed
    this.welcome = null;
    this.schema = null;
    this.world = null; // newest applied world
    this.serverSeq = 0; // newest input seq the server applied (snap.seq)
    this.nextSeq = 1;
    this.lastError = null; // {code, name, msg}
    this.closeInfo = null; // {code, name, reason}
    this.stats = { snapshots: 0, bytes: 0, desyncs: 0, rejoins: 0, redirects: 0, rtt: null };
    // Callbacks, all optional.
    this.onWelcome = null; this.onSnapshot = null; this.onEvent = null;
    this.onError = null; this.onClose = null; this.onStatus = null;
    this.onMessage = null; // the game's "msg" to this player (protocol 5.6): ({tick, kind, data})

    this._ws = null;
    this._history = new Map(); // tick -> world
    this._lastEventTick = -1; // L of 6.6
    this._lastMessageN = 0; // newest game message number taken (5.6): a rejoin's replay repeats some
    this._inputSinceSnap = false;
    this._pings = new Map(); // id -> sent at (ms)
    this._pingId = 0;
    this._pingTimer = null;
    this._resync = false; // after a desync: rejoin without "ack"
    this._rejoinAttempt = 0;
    this._rejoinDeadline = 0;
    this._leaving = false;
  }

  get player() { return this.welcome ? this.welcome.player : null; }
  /** The room's game options from the welcome (every declared one; {} before it or from an older server). */
  get options() { return (this.welcome && this.welcome.options) || {}; }
  get newestTick() { return this.world ? this.world.tick : -1; }

  /** Open the connection and join (or rejoin when a session is held). */
  connect() {
    this._open(this._joinMessage());
  }

  /** Send one input; returns its seq, or null when not joined. */
  sendInput(values, actingOn = null) {
    if (this.state !== "joined") return null;
    const seq = this.nextSeq++;
    // "tick" is the tick of the world the player was shown (9: a client that
    // draws others in the past says its render tick, for lag compensation);
    // by default the newest. Never -1 (4.2); "ack" may be.
    const newest = Math.max(this.newestTick, this.welcome.tick);
    const tick = actingOn === null ? newest : Math.max(0, Math.min(newest, Math.floor(actingOn)));
    // Version 2: a binary row of the welcome's layout (4.2), not msgpack.
    this._sendRaw(encodeInputRow(this.welcome.layout || [], seq, tick, this.newestTick, values));
    this._inputSinceSnap = true;
    return seq;
  }

  /**
   * Send a game message (protocol 4.6) of a kind the welcome's "messages"
   * lists, e.g. sendMessage("chat", {text: "gg"}); false when not joined.
   * A refusal comes back as onError (4001, or 4006 over the game's rate).
   */
  sendMessage(kind, data = {}) {
    if (this.state !== "joined") return false;
    this._send({ t: "msg", kind, data });
    return true;
  }

  /** Leave the room for good: the server closes with 1000 "left". */
  leave() {
    if (this.state !== "joined") return;
    this._leaving = true;
    this._send({ t: "leave" });
  }

  /**
   * Stop for good, whatever the state: leave when joined, else drop the
   * connection; no reconnect follows, and no callback fires any more.
   */
  close() {
    this.onWelcome = this.onSnapshot = this.onEvent = this.onError = this.onClose = this.onStatus = null;
    this.onMessage = null;
    if (this.state === "joined") return this.leave();
    const ws = this._ws;
    this._ws = null;
    this._leaving = true;
    clearInterval(this._pingTimer);
    this.state = "closed";
    if (ws) ws.close(1000, "closed");
  }

  /** The newest world's entity in game units, or null. */
  entity(id) { return entityOf(this.world, this.schema, id); }

  /** Every entity of a world in game units, ascending ids. */
  entities(world = this.world) {
    return world ? sortedIds(world).map((id) => entityOf(world, this.schema, id)) : [];
  }

  /** A world this client still holds (for interpolation), or undefined. */
  worldAt(tick) { return this._history.get(tick); }

  // -- connection ---------------------------------------------------------------

  _joinMessage() {
    if (this.welcome) {
      // A rejoin: same room and session; "ack" resumes deltas from a world
      // we hold unchanged, none after a desync (3.8, 6.7).
      const msg = { t: "join", v: PROTOCOL_VERSION, room: this.welcome.room, session: this.welcome.session };
      if (!this._resync && this.world) msg.ack = this.world.tick;
      if (this.joinArgs.name) msg.name = this.joinArgs.name;
      return msg;
    }
    const msg = { t: "join", v: PROTOCOL_VERSION, name: this.joinArgs.name };
    if (this.joinArgs.room) msg.room = this.joinArgs.room;
    if (this.joinArgs.game) msg.game = this.joinArgs.game;
    return msg;
  }

  _open(joinMsg) {
    this.state = "connecting";
    this._status(`connecting to ${this.url}`);
    // No subprotocol argument: the server selects none and browsers would fail (1).
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    ws.onopen = () => ws.send(encode(joinMsg));
    ws.onmessage = (ev) => { if (this._ws === ws) this._receive(ev.data); };
    ws.onclose = (ev) => { if (this._ws === ws) this._closed(ev.code, ev.reason); };
  }

  _send(obj) {
    this._sendRaw(encode(obj));
  }

  _sendRaw(bytes) {
    if (this._ws && this._ws.readyState === WebSocket.OPEN) this._ws.send(bytes);
  }

  _status(text) { if (this.onStatus) this.onStatus(text); }

  _receive(data) {
    if (!(data instanceof ArrayBuffer)) return; // the server sends binary only
    this.stats.bytes += data.byteLength;
    const decoded = decode(new Uint8Array(data));
    if (Array.isArray(decoded)) { // a version 2 snapshot (5.2)
      let snap;
      try {
        snap = snapshotFromArray(decoded);
      } catch (err) {
        if (!(err instanceof DesyncError)) throw err;
        return this._desynced(err);
      }
      return this._onSnap(snap);
    }
    const msg = decoded;
    switch (msg.t) {
      case "welcome": return this._onWelcome(msg);
      case "snap": return this._onSnap(msg);
      case "pong": {
        const sent = this._pings.get(msg.id);
        if (sent !== undefined) {
          this._pings.delete(msg.id);
          this.stats.rtt = performance.now() - sent;
        }
        return;
      }
      case "error":
        this.lastError = { code: msg.code, name: CODES[msg.code] || "?", msg: msg.msg };
        if (this.onError) this.onError(this.lastError);
        return;
      case "redirect": return this._onRedirect(msg);
      case "msg": // reliable, in order, never dropped for a snapshot (5.6)
        if (msg.n <= this._lastMessageN) return; // replayed after a rejoin: already taken
        this._lastMessageN = msg.n;
        if (this.onMessage) this.onMessage({ tick: msg.tick, kind: msg.kind, data: msg.data, n: msg.n });
        return;
      default: return; // unknown server messages are ignored (2)
    }
  }

  _onWelcome(msg) {
    if (this.welcome && msg.session !== this.welcome.session) this._forgetSession();
    this.welcome = msg;
    this.schema = buildSchema(msg.schema);
    this.state = "joined";
    this._rejoinAttempt = 0;
    this._resync = false;
    this.lastError = null;
    this._status(`joined ${msg.room} as player ${msg.player}`);
    clearInterval(this._pingTimer);
    this._pingTimer = setInterval(() => this._ping(), PING_INTERVAL_MS);
    this._ping();
    if (this.onWelcome) this.onWelcome(msg);
  }

  _forgetSession() {
    // A new session is a new player: nothing of the old one applies, and
    // input seqs start again at 1 (3.8).
    this._history.clear();
    this.world = null;
    this._lastEventTick = -1;
    this._lastMessageN = 0;
    this.serverSeq = 0;
    this.nextSeq = 1;
  }

  _desynced(err) {
    // 6.7: apply nothing, close normally, rejoin for a full snapshot.
    console.warn("tickroom: desync:", err.message);
    this.stats.desyncs += 1;
    this._resync = true;
    this._history.clear();
    this._reconnectSoon(1000, "desync");
  }

  _onSnap(msg) {
    if (!this.schema) return;
    let world;
    try {
      const baseline = msg.base === -1 ? null : this._history.get(msg.base);
      if (baseline === undefined) throw new DesyncError(`snapshot ${msg.tick} is against tick ${msg.base}, not held`);
      world = applySnapshot(baseline, msg, this.schema);
    } catch (err) {
      if (!(err instanceof DesyncError)) throw err;
      return this._desynced(err);
    }
    this.stats.snapshots += 1;
    this._history.set(world.tick, world);
    const newer = !this.world || world.tick > this.world.tick;
    if (newer) {
      this.world = world;
      this.serverSeq = msg.seq;
      for (const ev of msg.ev || []) {
        if (ev[0] > this._lastEventTick && this.onEvent) this.onEvent(ev);
      }
      this._lastEventTick = world.tick;
    }
    // Keep every world from the newest base on; older ones, and those the
    // server no longer holds, are never a baseline again (6.5).
    const floor = Math.max(msg.base, this.world.tick - SERVER_HISTORY_TICKS);
    for (const tick of this._history.keys()) if (tick < floor) this._history.delete(tick);
    // Acknowledge: the next input carries it; if none went out since the
    // previous snapshot we are idle, so ack alone (3.3).
    if (!this._inputSinceSnap) this._send({ t: "ack", tick: this.world.tick });
    this._inputSinceSnap = false;
    if (newer && this.onSnapshot) this.onSnapshot(world, msg);
  }

  _onRedirect(msg) {
    // The room lives on another node now: carry the session over there.
    if (typeof msg.url !== "string") return;
    this.stats.redirects += 1;
    this.url = msg.url;
    this._status(`redirected to ${msg.url}`);
    this._reconnectSoon(1000, "redirect");
  }

  _ping() {
    this._pingId = (this._pingId + 1) >>> 0;
    this._pings.set(this._pingId, performance.now());
    if (this._pings.size > 16) this._pings.delete(this._pings.keys().next().value);
    this._send({ t: "ping", id: this._pingId });
  }

  /** Close this connection ourselves and open a new one for the session. */
  _reconnectSoon(code, reason) {
    const ws = this._ws;
    this._ws = null; // its close event is ours, not a drop
    if (ws) ws.close(code, reason);
    clearInterval(this._pingTimer);
    this.state = "connecting";
    this._open(this._joinMessage());
  }

  _closed(code, reason) {
    this._ws = null;
    clearInterval(this._pingTimer);
    const wasJoined = this.state === "joined";
    // The error message carries the full reason; the close reason may be cut (3.4).
    const text = this.lastError && this.lastError.code === code ? this.lastError.msg : reason;
    this.closeInfo = { code, name: CODES[code] || "?", reason: text };
    if (this._leaving) return this._finish();
    if (code === 4110 && this.welcome) {
      // The session is gone (grace over, or another node): a new avatar.
      this.welcome = null;
      this._forgetSession();
      return this._retry();
    }
    if (RESUME.has(code) && this.welcome) {
      if (wasJoined) {
        this._rejoinDeadline = performance.now() + REJOIN_GRACE_MS;
        this.stats.rejoins += 1;
      } else if (performance.now() > this._rejoinDeadline) {
        // Past the grace the server has removed the avatar: start over.
        this.welcome = null;
        this._forgetSession();
      }
      return this._retry();
    }
    if (JOIN_AFRESH.has(code) && this.welcome) {
      this.welcome = null;
      this._forgetSession();
      return this._retry();
    }
    this._finish();
  }

  _retry() {
    if (this._leaving) return;
    const delay = REJOIN_DELAYS_MS[Math.min(this._rejoinAttempt, REJOIN_DELAYS_MS.length - 1)];
    this._rejoinAttempt += 1;
    if (this._rejoinAttempt > 20) return this._finish();
    this.state = "connecting";
    this._status(`connection closed (${this.closeInfo.code} ${this.closeInfo.name}); reconnecting`);
    setTimeout(() => { if (this.state === "connecting" && !this._ws) this._open(this._joinMessage()); }, delay);
  }

  _finish() {
    this.state = "closed";
    this._status(`closed: ${this.closeInfo.code} ${this.closeInfo.name} ${this.closeInfo.reason || ""}`);
    if (this.onClose) this.onClose(this.closeInfo);
  }
}
