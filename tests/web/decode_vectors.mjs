// Decodes the snapshot vectors written by tests/web/test_js_delta.py with the
// browser client's own modules, and writes what it built as JSON.
//
//   node tests/web/decode_vectors.mjs DIR   (reads DIR/manifest.json, writes DIR/decoded.json)
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decode } from "../../server/control/static/vendor/msgpack/index.mjs";
import { applySnapshot, buildSchema, DesyncError, sortedIds, entityOf } from "../../server/control/static/wire.js";

const dir = process.argv[2];
const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
// JSON has no BigInt, NaN or infinities: spell them as strings.
const plain = (_, v) => (typeof v === "bigint" ? v.toString() : typeof v === "number" && !Number.isFinite(v) ? String(v) : v);

const out = [];
for (const c of manifest.cases) {
  const schema = buildSchema(c.schema);
  const history = new Map();
  const results = [];
  for (const step of c.steps) {
    const msg = decode(readFileSync(join(dir, step.file)));
    const baseline = msg.base === -1 ? null : history.get(msg.base) ?? null;
    try {
      if (msg.base !== -1 && !baseline) throw new DesyncError(`no baseline ${msg.base}`);
      const world = applySnapshot(baseline, msg, schema);
      history.set(world.tick, world);
      const ids = sortedIds(world);
      const rows = {}, values = {}, units = {};
      for (const name of Object.keys(schema)) {
        rows[name] = ids.map((id) => hex(world.entities.get(id)[name]));
        values[name] = ids.map((id) => schema[name].decode(world.entities.get(id)[name]));
        units[name] = ids.map((id) => entityOf(world, schema, id)[name]);
      }
      results.push({ tick: world.tick, ids, rows, values, units });
    } catch (err) {
      if (!(err instanceof DesyncError)) throw err;
      results.push({ desync: err.message });
    }
  }
  out.push(results);
}
writeFileSync(join(dir, "decoded.json"), JSON.stringify(out, plain));
