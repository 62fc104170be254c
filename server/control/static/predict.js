// Client-side prediction of the local player and interpolation of everyone
// else, after the Source engine and Quake 3 models (docs/protocol.md 9).
//
// Prediction: inputs the server has not applied yet (seq > snap.seq) are
// replayed on top of the avatar's authoritative position, one tick each,
// so the player sees its own moves at once instead of a round trip later.
//
// Interpolation: other entities are drawn INTERP_TICKS in the past, between
// the two snapshots around that moment, so that a late or skipped snapshot
// still has a newer one to move towards instead of making things jump.

import { ARENA_SIZE, stepPlayer } from "./arena.js";

/** How far in the past other entities are drawn: about two snapshot intervals. */
export const INTERP_TICKS = 2;
const MAX_PENDING = 128; // inputs kept for replay (6.4 s at 20 Hz)
const BUFFER_TICKS = 40; // snapshots kept for interpolation
const CLOCK_GAIN = 0.05; // smoothing of the server-clock estimate
const SNAP_CORRECTION = 4; // units: a larger misprediction is not smoothed

export class Prediction {
  constructor() {
    this.size = ARENA_SIZE; // the room's arena side (welcome options.size), set by the page
    this.pending = []; // [{seq, input}], ascending seq
    this.pos = null; // predicted position after every pending input (units)
    this.prevPos = null; // the same, one input earlier: drawn between the two
    this.error = [0, 0]; // visual offset left by a correction, decays
    this.sentAt = 0;
  }

  reset() { this.pending = []; this.pos = this.prevPos = null; this.error = [0, 0]; }

  /** An input just went out: show its effect now. */
  sent(seq, input, hp, rate) {
    this.pending.push({ seq, input });
    if (this.pending.length > MAX_PENDING) this.pending.shift();
    if (this.pos) {
      this.prevPos = this.pos;
      this.pos = stepPlayer(this.pos, input, hp, rate, this.size);
    }
    this.sentAt = performance.now();
  }

  /** A snapshot arrived: restart from the server's position and replay. */
  reconcile(serverPos, serverSeq, hp, rate) {
    this.pending = this.pending.filter((p) => p.seq > serverSeq);
    let pos = serverPos;
    let prev = serverPos;
    for (const p of this.pending) {
      prev = pos;
      pos = stepPlayer(pos, p.input, hp, rate, this.size);
    }
    if (this.pos) {
      // Keep what was on screen and let the difference fade (no snapping
      // on a 1/32-unit rounding), unless the miss is big (respawn, wall).
      const dx = this.pos[0] - pos[0];
      const dy = this.pos[1] - pos[1];
      if (Math.hypot(dx, dy) < SNAP_CORRECTION) this.error = [this.error[0] + dx, this.error[1] + dy];
      else this.error = [0, 0];
    }
    this.pos = pos;
    this.prevPos = prev;
  }

  /** Where to draw the local player now. */
  render(rate) {
    if (!this.pos) return null;
    const t = Math.min(1, (performance.now() - this.sentAt) * rate / 1000);
    this.error = [this.error[0] * 0.85, this.error[1] * 0.85];
    const a = this.prevPos || this.pos;
    return [a[0] + (this.pos[0] - a[0]) * t + this.error[0], a[1] + (this.pos[1] - a[1]) * t + this.error[1]];
  }
}

function lerpAngle(a, b, t) {
  let d = b - a;
  while (d > Math.PI) d -= 2 * Math.PI;
  while (d < -Math.PI) d += 2 * Math.PI;
  return a + d * t;
}

export class Interpolation {
  constructor() {
    this.snaps = []; // [{tick, byId: Map<id, entity in units>}], ascending tick
    this.clockOffset = null; // server time (s) - local time (s), smoothed
    // Optional (entity, tick) => entity placed at that (fractional) tick, for
    // entities a game sends once and clients extrapolate (the arena's
    // projectiles: arena.js placeAt); it overrides the blend between snapshots.
    this.place = null;
  }

  reset() { this.snaps = []; this.clockOffset = null; }

  /** Record a newly applied world (entities in game units). */
  push(tick, entities, rate) {
    const byId = new Map(entities.map((e) => [e.id, e]));
    this.snaps.push({ tick, byId });
    while (this.snaps.length > 2 && this.snaps[0].tick < tick - BUFFER_TICKS) this.snaps.shift();
    const sample = tick / rate - performance.now() / 1000;
    this.clockOffset = this.clockOffset === null ? sample : this.clockOffset + (sample - this.clockOffset) * CLOCK_GAIN;
  }

  /** The (fractional) tick other entities are drawn at now. */
  renderTick(rate) {
    if (this.clockOffset === null) return 0;
    return (performance.now() / 1000 + this.clockOffset) * rate - INTERP_TICKS;
  }

  /** Entities at the render tick: positions and aims blended between snapshots. */
  sample(rate) {
    const snaps = this.snaps;
    if (!snaps.length) return [];
    const t = this.renderTick(rate);
    let i = snaps.length - 1;
    while (i > 0 && snaps[i - 1].tick > t) i--;
    // snaps[i-1].tick <= t < snaps[i].tick when both exist.
    const to = snaps[i];
    const from = i > 0 ? snaps[i - 1] : to;
    const place = this.place;
    if (from === to || t >= to.tick) {
      const all = Array.from(to.byId.values());
      return place ? all.map((e) => place(e, t)) : all;
    }
    const f = Math.max(0, (t - from.tick) / (to.tick - from.tick));
    const out = [];
    for (const [id, b] of to.byId) {
      const a = from.byId.get(id);
      if (!a) continue; // not born yet at the render tick
      if (place) {
        const placed = place(b, t);
        if (placed !== b) { out.push(placed); continue; }
      }
      out.push({
        ...b,
        pos: [a.pos[0] + (b.pos[0] - a.pos[0]) * f, a.pos[1] + (b.pos[1] - a.pos[1]) * f],
        aim: lerpAngle(a.aim, b.aim, f),
      });
    }
    return out;
  }
}
