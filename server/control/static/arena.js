// The arena game as the client needs it: its constants, in one place, and
// the movement model the local player is predicted with.
//
// Mirrors simulation/games/arena.py (PLAYER_SPEED, PLAYER_RADIUS,
// DEFAULT_SIZE, ...) and docs/protocol.md 7.3. The arena's size is a room
// option: the welcome's options.size (arenaSize below).

export const ARENA_SIZE = 100; // units, the default side of the square (option "size")
export const PLAYER_RADIUS = 1.0; // units
export const PROJECTILE_RADIUS = 0.2; // units
export const PLAYER_SPEED = 12.0; // units / s at full stick
export const MAX_HP = 100;
export const KIND_PLAYER = 0;
export const KIND_PROJECTILE = 1;

/**
 * Where a projectile is at `tick`, in units: it is sent once (docs/protocol.md
 * 7.3), with its origin `pos`, its step per tick `vel` and `t0`, and flies
 * straight: pos + (tick - t0) * vel. Exact at whole ticks (the server's own
 * float64 values); a fractional tick gives the straight line in between.
 * `e` is an entity in game units (scale applied, as TickroomClient.entities gives).
 * @returns {[number, number]}
 */
export function projectileAt(e, tick) {
  const age = tick - e.t0;
  return [e.pos[0] + age * e.vel[0], e.pos[1] + age * e.vel[1]];
}

/** An entity placed at `tick`: projectiles extrapolated, players as they are. */
export function placeAt(e, tick) {
  return e.kind === KIND_PROJECTILE ? { ...e, pos: projectileAt(e, tick) } : e;
}

/**
 * One tick of the local player's movement, as the server steps it: the
 * stick is clamped to length 1, the avatar moves speed * dt along it and
 * is clamped inside the walls; a dead player (hp 0) does not move.
 * @returns {[number, number]} the new position in units
 */
export function stepPlayer([x, y], input, hp, rate, size = ARENA_SIZE) {
  if (hp <= 0) return [x, y];
  const mx = input.mx || 0;
  const my = input.my || 0;
  const len = Math.max(1, Math.hypot(mx, my));
  const step = PLAYER_SPEED / rate / len;
  const clamp = (v) => Math.min(size - PLAYER_RADIUS, Math.max(PLAYER_RADIUS, v));
  return [clamp(x + mx * step), clamp(y + my * step)];
}

/** The room's arena side in units, from the welcome's options. */
export function arenaSize(options) {
  return options && typeof options.size === "number" ? options.size : ARENA_SIZE;
}

/** The room's view radius in units (option "fog"); 0: no fog, everything is seen. */
export function fogRadius(options) {
  return options && typeof options.fog === "number" && options.fog > 0 ? options.fog : 0;
}
