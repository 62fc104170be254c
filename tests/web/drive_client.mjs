// Drives tickroom.js's TickroomClient over a fake WebSocket through a script
// of steps written by tests/web/test_js_client.py, and records what it sent.
//
//   node tests/web/drive_client.mjs DIR   (DIR/steps.json -> DIR/driven.json)
//
// Steps: {"open": true} (the socket connects), {"recv": FILE} (a server
// message), {"input": {...}} (the game sends an input), {"close": CODE}
// (the server closes or the connection drops), {"wait": MS}.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decode } from "../../server/control/static/vendor/msgpack/index.mjs";

const sockets = [];
class FakeWebSocket {
  static OPEN = 1;
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    sockets.push(this);
  }
  send(data) {
    // A version 2 input row is not msgpack: record its header and its bytes.
    if (data[0] === 0x01) {
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      this.sent.push({
        t: "input", seq: view.getUint32(1, true), tick: view.getInt32(5, true), ack: view.getInt32(9, true),
        row: Array.from(data),
      });
      return;
    }
    this.sent.push(decode(data));
  }
  close(code, reason) { this.closedWith = { code, reason }; this.readyState = 3; }
}
globalThis.WebSocket = FakeWebSocket;
const { TickroomClient } = await import("../../server/control/static/tickroom.js");

const dir = process.argv[2];
const steps = JSON.parse(readFileSync(join(dir, "steps.json"), "utf8"));
const client = new TickroomClient({ url: "ws://node-a:7350", room: "lobby", name: "ada" });
const events = [];
const log = [];
client.onEvent = (ev) => events.push(ev);
client.connect();
const current = () => sockets[sockets.length - 1];

for (const step of steps) {
  const ws = current();
  if (step.open) {
    ws.readyState = 1;
    ws.onopen();
  } else if (step.recv) {
    const bytes = readFileSync(join(dir, step.recv));
    ws.onmessage({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
  } else if (step.input) {
    client.sendInput(step.input);
  } else if (step.close) {
    ws.readyState = 3;
    ws.onclose({ code: step.close, reason: "" });
  } else if (step.wait) {
    await new Promise((resolve) => setTimeout(resolve, step.wait));
  }
  log.push({
    state: client.state,
    tick: client.newestTick,
    history: Array.from(client._history.keys()).sort((a, b) => a - b),
    sockets: sockets.length,
    options: client.options,
  });
}
const out = {
  log,
  events,
  sockets: sockets.map((s) => ({ url: s.url, sent: s.sent, closedWith: s.closedWith })),
  closeInfo: client.closeInfo,
};
writeFileSync(join(dir, "driven.json"), JSON.stringify(out));
process.exit(0); // the ping timer would keep node alive
