// Types of predict.js: client-side prediction of the local player and
// interpolation of the others (docs/protocol.md, section 9).
import type { MoveInput } from "./arena.js";
import type { Entity } from "./wire.js";

/** How far in the past other entities are drawn, ticks. */
export declare const INTERP_TICKS: number;

export declare class Prediction {
  pending: { seq: number; input: MoveInput }[];
  pos: [number, number] | null;
  prevPos: [number, number] | null;
  error: [number, number];
  sentAt: number;
  reset(): void;
  /** An input just went out: show its effect now. */
  sent(seq: number, input: MoveInput, hp: number, rate: number): void;
  /** A snapshot arrived: restart from the server's position and replay the inputs it has not applied. */
  reconcile(serverPos: [number, number], serverSeq: number, hp: number, rate: number): void;
  /** Where to draw the local player now, or null before the first snapshot. */
  render(rate: number): [number, number] | null;
}

export declare class Interpolation {
  snaps: { tick: number; byId: Map<number, Entity> }[];
  clockOffset: number | null;
  /** Places an entity at a (fractional) tick instead of blending it (arena.js placeAt). */
  place: ((e: Entity, tick: number) => Entity) | null;
  reset(): void;
  /** Record a newly applied world (entities in game units). */
  push(tick: number, entities: Entity[], rate: number): void;
  /** The (fractional) tick other entities are drawn at now. */
  renderTick(rate: number): number;
  /** Entities at the render tick, positions and aims blended between snapshots. */
  sample(rate: number): Entity[];
}
