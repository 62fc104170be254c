// A view of any game, driven by its schema (the welcome's `schema`) and
// options: each entity with a 2-component position is drawn as a circle,
// every other component is listed in a side panel. /play uses it for every
// game but arena, which has its own richer view (play.js).
//
// Which component is the position: "pos" or "position" when the game has
// one with shape [2], else the first component with shape [2]. The world's
// extent: the room's option "size" (a square side, as arena and tag
// declare), else the bounding box of the positions seen so far.

const DEFAULT_EXTENT = 100; // units: before any entity is seen, without a size option
const CIRCLE_PX = 8; // entities are drawn at a fixed size: the schema says nothing of radii

/** The name of the schema's position component, or null when it has none. */
export function positionComponent(schema) {
  const is2d = (name) => schema[name] && Array.isArray(schema[name].shape)
    && schema[name].shape.length === 1 && schema[name].shape[0] === 2;
  for (const name of ["pos", "position"]) if (is2d(name)) return name;
  return Object.keys(schema).find(is2d) || null;
}

/** The components listed in the side panel: every one but the position. */
export function panelComponents(schema) {
  const pos = positionComponent(schema);
  return Object.keys(schema).filter((name) => name !== pos);
}

/** A component's value as panel text: numbers to at most 2 decimals. */
export function formatValue(value) {
  const one = (v) => (typeof v === "number" && !Number.isInteger(v) ? v.toFixed(2) : String(v));
  return Array.isArray(value) || ArrayBuffer.isView(value) ? `[${Array.from(value, one).join(", ")}]` : one(value);
}

/** Keeps the extent of a world whose size no option gives (it only grows: a steady picture). */
export class Extent {
  constructor(options) {
    this.fixed = options && typeof options.size === "number" && options.size > 0 ? options.size : null;
    this.reset();
  }

  reset() {
    this.lo = [Infinity, Infinity];
    this.hi = [-Infinity, -Infinity];
  }

  /** [x0, y0, side]: the square the canvas shows, in world units. */
  fit(points) {
    if (this.fixed !== null) return [0, 0, this.fixed];
    for (const [x, y] of points) {
      this.lo = [Math.min(this.lo[0], x), Math.min(this.lo[1], y)];
      this.hi = [Math.max(this.hi[0], x), Math.max(this.hi[1], y)];
    }
    if (!Number.isFinite(this.lo[0])) return [0, 0, DEFAULT_EXTENT];
    const side = Math.max(this.hi[0] - this.lo[0], this.hi[1] - this.lo[1], 1) * 1.2;
    const cx = (this.lo[0] + this.hi[0]) / 2;
    const cy = (this.lo[1] + this.hi[1]) / 2;
    return [cx - side / 2, cy - side / 2, side];
  }
}

function colorOf(id) { return `hsl(${(id * 137.5) % 360} 70% 60%)`; }

/**
 * Draw `entities` (client.entities(): game units) on `ctx`: a circle per
 * entity with a position, the local player outlined, names under players.
 * @returns {number} how many entities were drawn
 */
export function drawWorld(ctx, canvas, entities, { schema, extent, me, names }) {
  ctx.fillStyle = "#0b1016";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = "#3a4a5e"; ctx.lineWidth = 3; ctx.strokeRect(1.5, 1.5, canvas.width - 3, canvas.height - 3);
  const pos = positionComponent(schema);
  if (pos === null) return 0;
  const placed = entities.filter((e) => e[pos]);
  const [x0, y0, side] = extent.fit(placed.map((e) => e[pos]));
  const s = canvas.width / side; // pixels per unit
  for (const e of placed) {
    const x = (e[pos][0] - x0) * s;
    const y = (e[pos][1] - y0) * s;
    ctx.fillStyle = colorOf(e.id);
    ctx.beginPath(); ctx.arc(x, y, CIRCLE_PX, 0, 2 * Math.PI); ctx.fill();
    if (e.id === me) { ctx.strokeStyle = "#fff"; ctx.lineWidth = 2; ctx.stroke(); }
    const name = names.get(e.id);
    if (name) {
      ctx.fillStyle = "#d8e0ea"; ctx.font = "11px sans-serif"; ctx.textAlign = "center";
      ctx.fillText(name, x, y + CIRCLE_PX + 12);
    }
  }
  return placed.length;
}

/** The side panel's table: a header row and one row per entity (name, then each panel component). */
export function panelTable(entities, { schema, names }) {
  const columns = panelComponents(schema);
  const rows = entities.map((e) => [names.get(e.id) || `#${e.id}`, ...columns.map((c) => (c in e ? formatValue(e[c]) : ""))]);
  return { head: ["entity", ...columns], rows, ids: entities.map((e) => e.id) };
}

/**
 * An input for the welcome's input fields from the page's controls: fields
 * named mx / my take the keyboard's stick, bools the mouse button, every
 * other field 0; each clamped into its range, so the server accepts it
 * (every field present: absent means 0, docs/protocol.md 4.2).
 */
export function genericInput(fields, stick, pressed) {
  const input = {};
  for (const [name, [kind, lo, hi]] of Object.entries(fields)) {
    if (kind === "bool") { input[name] = pressed; continue; }
    let v = name === "mx" ? stick[0] : name === "my" ? stick[1] : 0;
    v = Math.min(hi, Math.max(lo, v));
    input[name] = kind === "int" ? Math.min(Math.floor(hi), Math.max(Math.ceil(lo), Math.round(v))) : v;
  }
  return input;
}
