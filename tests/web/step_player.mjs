// Replays inputs through the page's movement model (arena.js stepPlayer).
//   node tests/web/step_player.mjs IN.json OUT.json
// IN: {rate, size, start: [x, y], hp, inputs: [{mx, my}, ...]}; OUT: positions after each input.
import { readFileSync, writeFileSync } from "node:fs";
import { stepPlayer } from "../../server/control/static/arena.js";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
let pos = spec.start;
const out = [];
for (const input of spec.inputs) {
  pos = stepPlayer(pos, input, spec.hp, spec.rate, spec.size);
  out.push(pos);
}
writeFileSync(process.argv[3], JSON.stringify(out));
