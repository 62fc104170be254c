// The package against a real tickroom node (TICKROOM_URL, e.g.
// ws://127.0.0.1:7350; tests/web/test_js_package.py starts one): join,
// receive and apply snapshots, move by sending inputs, predict, leave.
// Node 20 needs --experimental-websocket for the WebSocket global (the
// "test" script passes it through NODE_OPTIONS in the Python test).
import assert from "node:assert/strict";
import { test } from "node:test";

import { TickroomClient } from "@tickroom/client";
import { Prediction } from "@tickroom/client/predict";

const URL = process.env.TICKROOM_URL;
const DEADLINE_MS = 15_000;

function until(predicate, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      if (predicate()) { clearInterval(poll); resolve(); }
      else if (Date.now() - started > DEADLINE_MS) { clearInterval(poll); reject(new Error(`timed out waiting for ${what}`)); }
    }, 10);
  });
}

test("a client joins, moves, predicts and leaves", async () => {
  assert.ok(URL, "set TICKROOM_URL to a running node's game port (ws://HOST:PORT)");
  assert.equal(typeof WebSocket, "function", "run node with --experimental-websocket (Node 20)");
  const client = new TickroomClient({ url: URL, room: "npm-package", name: "node" });
  const prediction = new Prediction();
  let snapshots = 0;
  let closed = null;
  client.onSnapshot = () => {
    snapshots++;
    const me = client.entity(client.player);
    if (me) prediction.reconcile(me.pos, client.serverSeq, me.hp, client.welcome.rate);
  };
  client.onClose = (info) => { closed = info; };
  client.connect();
  await until(() => client.state === "joined" && client.entity(client.player), "the join and a first snapshot");
  assert.equal(client.welcome.room, "npm-package");
  const start = client.entity(client.player).pos;
  const direction = start[0] > 50 ? -1 : 1; // away from the nearer wall
  const mover = setInterval(() => {
    const seq = client.sendInput({ mx: direction, my: 0, aim: 0, fire: false });
    if (seq !== null) prediction.sent(seq, { mx: direction, my: 0 }, client.entity(client.player).hp, client.welcome.rate);
  }, 50);
  try {
    await until(() => direction * (client.entity(client.player).pos[0] - start[0]) > 3, "the server to move the avatar");
  } finally {
    clearInterval(mover);
  }
  assert.ok(snapshots > 5);
  assert.ok(client.serverSeq > 0, "snapshots carry the newest applied input seq");
  assert.ok(direction * (prediction.pos[0] - start[0]) > 3, "prediction follows the inputs");
  client.leave();
  await until(() => closed !== null, "the close after leave");
  assert.equal(closed.code, 1000);
});
