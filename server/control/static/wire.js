// The snapshot codec of docs/protocol.md sections 6.2-6.4, written from the
// page: row decoders built from the welcome's schema, and applySnapshot(),
// which rebuilds the world at a tick from a baseline world and a "snap".
//
// No I/O and no DOM: node runs this module against vectors that the Python
// encoder produced (tests/web/test_js_delta.py).
//
// A world is {tick, entities: Map<id, record>}, a record maps a component
// name to its row as raw wire bytes (a Uint8Array of rowBytes). Worlds are
// never modified once built: a new world shares the unchanged records of its
// baseline (copy-on-write per entity), so keeping 64 of them is cheap.

/** A snapshot that cannot be applied: the client is desynchronised (6.7). */
export class DesyncError extends Error {
  constructor(message) {
    super(message);
    this.name = "DesyncError";
  }
}

// dtype kind + size -> DataView reader (always little-endian, 6.2).
const READERS = {
  b1: (v, o) => v.getUint8(o) !== 0,
  i1: (v, o) => v.getInt8(o),
  u1: (v, o) => v.getUint8(o),
  i2: (v, o) => v.getInt16(o, true),
  u2: (v, o) => v.getUint16(o, true),
  i4: (v, o) => v.getInt32(o, true),
  u4: (v, o) => v.getUint32(o, true),
  // 64-bit integers are BigInt: a Number would silently lose bits past 2^53.
  i8: (v, o) => v.getBigInt64(o, true),
  u8: (v, o) => v.getBigUint64(o, true),
  f2: (v, o) => halfToFloat(v.getUint16(o, true)),
  f4: (v, o) => v.getFloat32(o, true),
  f8: (v, o) => v.getFloat64(o, true),
};

/** IEEE 754 binary16 bits to a Number (no Float16Array in every browser yet). */
export function halfToFloat(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * One component description (7.1) as a row decoder.
 * Throws Error on a dtype, shape or scale this page does not allow.
 */
export function componentSpec(name, desc) {
  const dtype = desc.dtype;
  if (typeof dtype !== "string" || dtype.length !== 3) throw new Error(`component ${name}: bad dtype ${dtype}`);
  const order = dtype[0];
  const key = dtype.slice(1);
  const read = READERS[key];
  const size = Number(dtype[2]);
  if (!read || (size === 1 ? order !== "|" : order !== "<")) throw new Error(`component ${name}: unsupported dtype ${dtype}`);
  const shape = desc.shape == null ? [] : Array.from(desc.shape, Number); // missing shape: a scalar (7.1)
  if (shape.length > 2 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new Error(`component ${name}: bad shape ${JSON.stringify(desc.shape)}`);
  }
  const items = shape.reduce((a, b) => a * b, 1);
  const scale = desc.scale == null ? null : Number(desc.scale);
  if (scale !== null && !(Number.isFinite(scale) && scale > 0)) throw new Error(`component ${name}: bad scale ${desc.scale}`);
  const isBool = key === "b1";
  return {
    name, dtype, shape, items, size, scale, isBool,
    rowBytes: items * size,
    /** The row's raw wire value: a scalar, [k] or [[l] x k] (row-major). */
    decode(row) {
      const view = new DataView(row.buffer, row.byteOffset, row.byteLength);
      const flat = [];
      for (let i = 0; i < items; i++) flat.push(read(view, i * size));
      if (shape.length === 0) return flat[0];
      if (shape.length === 1) return flat;
      const out = [];
      for (let r = 0; r < shape[0]; r++) out.push(flat.slice(r * shape[1], (r + 1) * shape[1]));
      return out;
    },
  };
}

/** The welcome's schema map as {name: spec}. */
export function buildSchema(description) {
  const schema = {};
  for (const [name, desc] of Object.entries(description)) schema[name] = componentSpec(name, desc);
  return schema;
}

/** An entity's components in game units: wire value / scale where a scale is given. */
export function gameValue(spec, row) {
  const raw = spec.decode(row);
  if (spec.scale === null) return raw;
  const unscale = (x) => (typeof x === "bigint" ? Number(x) : x) / spec.scale;
  if (spec.shape.length === 0) return unscale(raw);
  if (spec.shape.length === 1) return raw.map(unscale);
  return raw.map((r) => r.map(unscale));
}

function bytesOf(value, field) {
  if (!(value instanceof Uint8Array)) throw new DesyncError(`${field} must be bin`);
  return value;
}

/** Packed uint32 LE ids, strictly ascending (6.3). */
export function readIds(raw, field) {
  const bytes = bytesOf(raw, field);
  if (bytes.byteLength % 4) throw new DesyncError(`${field} is ${bytes.byteLength} bytes, not a multiple of 4`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ids = new Array(bytes.byteLength / 4);
  for (let i = 0; i < ids.length; i++) {
    ids[i] = view.getUint32(4 * i, true);
    if (i && ids[i] <= ids[i - 1]) throw new DesyncError(`${field} ids are not strictly ascending`);
  }
  return ids;
}

function asInt(value, field) {
  const n = typeof value === "bigint" ? Number(value) : value;
  if (!Number.isInteger(n)) throw new DesyncError(`${field} must be an int`);
  return n;
}

/** Check one "c" entry against m ids; returns the indexes into ids that carry it. */
function parseComponent(name, entry, m, schema) {
  const spec = Object.prototype.hasOwnProperty.call(schema, name) ? schema[name] : undefined;
  if (!spec) throw new DesyncError(`unknown component ${name}`);
  if (!Array.isArray(entry) || entry.length !== 2) throw new DesyncError(`component ${name} must be [mask, values]`);
  const mask = bytesOf(entry[0], `${name} mask`);
  const values = bytesOf(entry[1], `${name} values`);
  let carriers;
  if (mask.byteLength === 0) {
    carriers = Array.from({ length: m }, (_, i) => i);
  } else {
    if (mask.byteLength !== Math.ceil(m / 8)) throw new DesyncError(`component ${name}: mask of ${mask.byteLength} bytes for ${m} ids`);
    carriers = [];
    for (let i = 0; i < mask.byteLength * 8; i++) {
      // LSB first: bit j of byte i is entry 8i + j.
      if ((mask[i >> 3] >> (i & 7)) & 1) {
        if (i >= m) throw new DesyncError(`component ${name}: mask bit ${i} set past the ${m} ids`);
        carriers.push(i);
      }
    }
  }
  if (values.byteLength !== carriers.length * spec.rowBytes) {
    throw new DesyncError(`component ${name}: ${values.byteLength} bytes of values for ${carriers.length} rows of ${spec.rowBytes}`);
  }
  if (spec.isBool && values.some((b) => b > 1)) throw new DesyncError(`component ${name}: bool values must be 0 or 1`);
  return { spec, carriers, values };
}

/**
 * Rebuild the world at msg.tick from `baseline` (the world at msg.base, or
 * null for a full snapshot) and a decoded "snap" message (5.2, 6.4).
 *
 * Validates everything before building anything and never touches the
 * baseline, so on DesyncError the caller's history is as it was.
 */
export function applySnapshot(baseline, msg, schema) {
  const tick = asInt(msg.tick, "tick");
  const base = asInt(msg.base, "base");
  if (base === -1 ? baseline !== null : !baseline || baseline.tick !== base) {
    throw new DesyncError(`snapshot ${tick}: baseline ${base} not held`);
  }
  const ids = readIds(msg.ids, "ids");
  const rm = readIds(msg.rm, "rm");
  const n = asInt(msg.n, "n");
  if (msg.c === null || typeof msg.c !== "object" || Array.isArray(msg.c)) throw new DesyncError("c must be a map");
  const parsed = Object.entries(msg.c).map(([name, entry]) => parseComponent(name, entry, ids.length, schema));

  const old = baseline ? baseline.entities : new Map();
  if (base === -1 && rm.length) throw new DesyncError("rm in a full snapshot");
  const carried = new Set(ids);
  for (const id of rm) {
    if (!old.has(id)) throw new DesyncError(`rm id ${id} is not in the baseline`);
    if (carried.has(id)) throw new DesyncError(`id ${id} is both removed and carried`);
  }
  // A new entity carries every component of the schema.
  const carriedBy = {};
  for (const p of parsed) carriedBy[p.spec.name] = new Set(p.carriers);
  const isNew = ids.map((id) => !old.has(id));
  const newCount = isNew.filter(Boolean).length;
  if (newCount) {
    for (const name of Object.keys(schema)) {
      const set = carriedBy[name];
      if (!set || ids.some((_, i) => isNew[i] && !set.has(i))) throw new DesyncError(`a new entity does not carry component ${name}`);
    }
  }
  const total = old.size - rm.length + newCount;
  if (total !== n) throw new DesyncError(`n is ${n} but applying gives ${total} entities`);

  // Valid: build. Records of entities the message touches are copied, the
  // rest are shared with the baseline.
  const entities = new Map(old);
  for (const id of rm) entities.delete(id);
  const touched = ids.map((id, i) => (isNew[i] ? {} : { ...old.get(id) }));
  for (const { spec, carriers, values } of parsed) {
    carriers.forEach((i, k) => {
      // slice(): the world keeps its own bytes, not a view of the message.
      touched[i][spec.name] = values.slice(k * spec.rowBytes, (k + 1) * spec.rowBytes);
    });
  }
  ids.forEach((id, i) => entities.set(id, touched[i]));
  return { tick, entities };
}

/** The world's ids, ascending. */
export function sortedIds(world) {
  return Array.from(world.entities.keys()).sort((a, b) => a - b);
}

/** One entity in game units ({name: value}), or null when absent. */
export function entityOf(world, schema, id) {
  const rec = world && world.entities.get(id);
  if (!rec) return null;
  const out = { id };
  for (const [name, row] of Object.entries(rec)) out[name] = gameValue(schema[name], row);
  return out;
}

// --- protocol version 2: the snapshot envelope and the input row -----------

/** Names of a version 2 snapshot's 8 positional values (5.2). */
export const SNAPSHOT_FIELDS = ["seq", "tick", "base", "n", "ids", "c", "rm", "ev"];

/**
 * A decoded version 2 snapshot (a msgpack array, 5.2) as the named "snap"
 * message applySnapshot reads. Throws DesyncError for an array of another length.
 */
export function snapshotFromArray(values) {
  if (values.length !== SNAPSHOT_FIELDS.length) {
    throw new DesyncError(`a snapshot has ${SNAPSHOT_FIELDS.length} values, got ${values.length}`);
  }
  const msg = { t: "snap" };
  SNAPSHOT_FIELDS.forEach((name, i) => { msg[name] = values[i]; });
  return msg;
}

const ROW_HEADER_BYTES = 13; // tag u8, seq u32, tick i32, ack i32
const ROW_FIELD_BYTES = { "<f8": 8, "<i8": 8, "|u1": 1 };

/**
 * Encode one input as a version 2 row (4.2), laid out as the welcome's
 * `layout` says: [[name, dtype], ...]. Absent fields are 0 / false.
 * Throws for a dtype this client does not know.
 */
export function encodeInputRow(layout, seq, tick, ack, values) {
  let size = ROW_HEADER_BYTES;
  for (const [, dtype] of layout) {
    if (!(dtype in ROW_FIELD_BYTES)) throw new Error(`unknown input row dtype ${dtype}`);
    size += ROW_FIELD_BYTES[dtype];
  }
  const row = new Uint8Array(size);
  const view = new DataView(row.buffer);
  view.setUint8(0, 0x01);
  view.setUint32(1, seq, true);
  view.setInt32(5, tick, true);
  view.setInt32(9, ack, true);
  let offset = ROW_HEADER_BYTES;
  for (const [name, dtype] of layout) {
    const value = values[name];
    if (dtype === "<f8") view.setFloat64(offset, Number(value ?? 0), true);
    else if (dtype === "<i8") view.setBigInt64(offset, BigInt(Math.trunc(Number(value ?? 0))), true);
    else view.setUint8(offset, value ? 1 : 0);
    offset += ROW_FIELD_BYTES[dtype];
  }
  return row;
}
