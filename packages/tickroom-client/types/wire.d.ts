// Types of wire.js: snapshot decoding (docs/protocol.md, sections 5 to 7).

/** A snapshot applied against the baseline it names could not be (6.7): rejoin without "ack". */
export declare class DesyncError extends Error {
  constructor(message: string);
}

/** A game value: a scalar, [k] or [[l] x k] numbers (booleans for b1, bigints for 8-byte integers without a scale). */
export type WireValue = number | boolean | bigint | WireValue[];

/** One component of the welcome's schema, as the decoder uses it. */
export interface ComponentSpec {
  name: string;
  dtype: string;
  shape: number[];
  items: number;
  size: number;
  scale: number | null;
  isBool: boolean;
  rowBytes: number;
  /** The row's raw wire value. */
  decode(row: Uint8Array): WireValue;
}

/** The welcome's schema as {component name: spec}. */
export type Schema = Record<string, ComponentSpec>;

/** The welcome's schema description (7.1): {name: {dtype, shape?, scale?}}. */
export type SchemaDescription = Record<string, { dtype: string; shape?: number[] | null; scale?: number | null }>;

/** A world: its tick and each entity's component rows, raw bytes. */
export interface World {
  tick: number;
  entities: Map<number, Record<string, Uint8Array>>;
}

/** One entity in game units: its id and each component's value. */
export interface Entity {
  id: number;
  [component: string]: WireValue;
}

/** A decoded "snap" message (5.2). */
export interface SnapshotMessage {
  t: "snap";
  tick: number;
  base: number;
  seq: number;
  n: number;
  ids: Uint8Array;
  rm: Uint8Array;
  c: Record<string, unknown>;
  ev?: unknown[];
  [field: string]: unknown;
}

export declare function halfToFloat(bits: number): number;
export declare function componentSpec(name: string, desc: SchemaDescription[string]): ComponentSpec;
export declare function buildSchema(description: SchemaDescription): Schema;
export declare function gameValue(spec: ComponentSpec, row: Uint8Array): WireValue;
export declare function readIds(raw: Uint8Array, field: string): number[];
/** Rebuild the world at msg.tick from `baseline` (null: a full snapshot). Throws DesyncError. */
export declare function applySnapshot(baseline: World | null, msg: SnapshotMessage, schema: Schema): World;
export declare function sortedIds(world: World): number[];
export declare function entityOf(world: World | null, schema: Schema | null, id: number): Entity | null;
/** Names of a version 2 snapshot's positional values (5.2). */
export declare const SNAPSHOT_FIELDS: readonly ["seq", "tick", "base", "n", "ids", "c", "rm", "ev"];
/** A version 2 snapshot array as the named message applySnapshot reads. Throws DesyncError. */
export declare function snapshotFromArray(values: unknown[]): SnapshotMessage;
/** One input as a version 2 row (4.2) of the welcome's layout; absent fields are 0 / false. */
export declare function encodeInputRow(
  layout: [string, string][],
  seq: number,
  tick: number,
  ack: number,
  values: Record<string, number | boolean>,
): Uint8Array;
