// Places projectiles with the page's arena.js projectileAt (docs/protocol.md 7.3).
//   node tests/web/place_projectiles.mjs IN.json OUT.json
// IN: [{tick, entities: [{pos, vel, t0} in units]}, ...]; OUT: [[[x, y], ...], ...].
import { readFileSync, writeFileSync } from "node:fs";
import { projectileAt } from "../../server/control/static/arena.js";

const frames = JSON.parse(readFileSync(process.argv[2], "utf8"));
writeFileSync(process.argv[3], JSON.stringify(frames.map((f) => f.entities.map((e) => projectileAt(e, f.tick)))));
