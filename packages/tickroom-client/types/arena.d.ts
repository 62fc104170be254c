// Types of arena.js: the reference game's constants and the local player's
// movement, as the server steps it (used by prediction).
import type { Entity } from "./wire.js";
export declare const ARENA_SIZE: number;
export declare const PLAYER_RADIUS: number;
export declare const PROJECTILE_RADIUS: number;
export declare const PLAYER_SPEED: number;
export declare const MAX_HP: number;
export declare const KIND_PLAYER: number;
export declare const KIND_PROJECTILE: number;

export interface MoveInput {
  mx?: number;
  my?: number;
  [field: string]: number | boolean | undefined;
}

/** One tick of the local player's movement: the new position in units. */
export declare function stepPlayer(pos: [number, number], input: MoveInput, hp: number, rate: number): [number, number];

/** A projectile's position at `tick`, in units: pos + (tick - t0) * vel (sent once, 7.3). */
export declare function projectileAt(e: { pos: number[]; vel: number[]; t0: number }, tick: number): [number, number];
/** An entity placed at `tick`: a projectile extrapolated, any other entity unchanged. */
export declare function placeAt(e: Entity, tick: number): Entity;
