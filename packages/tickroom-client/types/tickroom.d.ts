// Types of tickroom.js: the connection, join/rejoin, inputs and acks
// (docs/protocol.md is the normative description of every message).
import type { Entity, Schema, SchemaDescription, SnapshotMessage, World } from "./wire.js";

export { applySnapshot, buildSchema, DesyncError, entityOf, sortedIds } from "./wire.js";
export type { ComponentSpec, Entity, Schema, SchemaDescription, SnapshotMessage, WireValue, World } from "./wire.js";

export declare const PROTOCOL_VERSION: 2;
/** Worlds more than this many ticks older than the newest are never a baseline (6.5). */
export declare const SERVER_HISTORY_TICKS: number;
export declare const PING_INTERVAL_MS: number;
/** A dropped player waits this long for a rejoin by default (3.7). */
export declare const REJOIN_GRACE_MS: number;
/** Close and error codes of section 8, by number, for messages a person reads. */
export declare const CODES: Readonly<Record<number, string>>;

export interface ClientOptions {
  /** ws:// or wss:// URL of a node's game port. */
  url: string;
  /** Room to join or create; null: quick match. */
  room?: string | null;
  name?: string;
  /** Game of a room created by this join; null: the server's default. */
  game?: string | null;
}

/** The "welcome" message (5.1). */
export interface Welcome {
  t: "welcome";
  v: number;
  room: string;
  game: string;
  player: number;
  session: string;
  rate: number;
  tick: number;
  schema: SchemaDescription;
  inputs: Record<string, unknown>;
  players: [number, string][];
  /** The game's message types (4.6): kind -> field -> spec; absent from older servers. */
  messages?: Record<string, Record<string, unknown[]>>;
  /** Version 2: the input row's fields in order, [name, dtype] (4.2). */
  layout?: [string, "<f8" | "<i8" | "|u1"][];
  [field: string]: unknown;
}

export interface ErrorInfo {
  code: number;
  name: string;
  msg: string;
}

export interface CloseInfo {
  code: number;
  name: string;
  reason: string;
}

export interface ClientStats {
  snapshots: number;
  bytes: number;
  desyncs: number;
  rejoins: number;
  redirects: number;
  /** Round-trip time of the newest ping, ms; null before the first pong. */
  rtt: number | null;
}

/** An event of a snapshot (6.6): [tick, kind, ...arguments]. */
export type GameEvent = [number, string, ...unknown[]];

/** A message from the game to this player (5.6). */
export interface GameMessage {
  /** The room's tick when the game sent it. */
  tick: number;
  kind: string;
  data: Record<string, unknown>;
  /** This player's message number (1, 2, 3 ...); the client drops a rejoin's repeats. */
  n: number;
}

/** Input values by the names of the welcome's "inputs" (4.2). */
export type InputValues = Record<string, number | boolean>;

export declare class TickroomClient {
  constructor(options: ClientOptions);
  readonly url: string;
  state: "idle" | "connecting" | "joined" | "closed";
  welcome: Welcome | null;
  schema: Schema | null;
  /** The newest applied world. */
  world: World | null;
  /** The newest input seq the server applied (prediction replays the later ones). */
  serverSeq: number;
  nextSeq: number;
  lastError: ErrorInfo | null;
  closeInfo: CloseInfo | null;
  stats: ClientStats;
  onWelcome: ((welcome: Welcome) => void) | null;
  onSnapshot: ((world: World, msg: SnapshotMessage) => void) | null;
  onEvent: ((event: GameEvent) => void) | null;
  /** A message from the game to this player (protocol 5.6): reliable, in order. */
  onMessage: ((message: GameMessage) => void) | null;
  onError: ((error: ErrorInfo) => void) | null;
  onClose: ((info: CloseInfo) => void) | null;
  onStatus: ((text: string) => void) | null;
  /** This client's player (entity) id once joined, else null. */
  readonly player: number | null;
  /** The newest applied world's tick, -1 before the first snapshot. */
  readonly newestTick: number;
  /** Open the connection and join (or rejoin when a session is held). */
  connect(): void;
  /** Send one input; its seq, or null when not joined. `actingOn`: the tick
   * of the world the player was shown (its render tick, for lag
   * compensation, docs/protocol.md 9); default the newest world's. */
  sendInput(values: InputValues, actingOn?: number | null): number | null;
  /** Send a game message (protocol 4.6) of a kind the welcome's `messages` lists; false when not joined. */
  sendMessage(kind: string, data?: Record<string, string | number | boolean | Uint8Array>): boolean;
  /** Leave the room for good: the server closes with 1000. */
  leave(): void;
  /** Stop for good, whatever the state; no callback fires any more. */
  close(): void;
  /** The newest world's entity in game units, or null. */
  entity(id: number): Entity | null;
  /** Every entity of a world in game units, ascending ids. */
  entities(world?: World | null): Entity[];
  /** A world this client still holds (for interpolation), or undefined. */
  worldAt(tick: number): World | undefined;
}
