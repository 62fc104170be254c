// Type-checked by `npm run typecheck` (tsc --noEmit): how a game client uses
// the package, against its declarations.
import { CODES, DesyncError, PROTOCOL_VERSION, TickroomClient, type Entity, type World } from "@tickroom/client";
import { Interpolation, Prediction } from "@tickroom/client/predict";
import { placeAt, projectileAt, stepPlayer } from "@tickroom/client/arena";
import { applySnapshot, buildSchema } from "@tickroom/client/wire";

const client = new TickroomClient({ url: "ws://127.0.0.1:7350", room: "lobby", name: "ada" });
const prediction = new Prediction();
const interpolation = new Interpolation();
interpolation.place = placeAt; // arena projectiles: sent once, flown here
client.onWelcome = (welcome) => {
  const rate: number = welcome.rate;
  const schemaNames: string[] = Object.keys(buildSchema(welcome.schema));
  console.log(welcome.room, welcome.player, rate, schemaNames, PROTOCOL_VERSION);
};
client.onSnapshot = (world: World) => {
  const me: Entity | null = client.entity(client.player ?? -1);
  if (me && client.welcome) {
    prediction.reconcile(me.pos as [number, number], client.serverSeq, me.hp as number, client.welcome.rate);
    interpolation.push(world.tick, client.entities(world), client.welcome.rate);
  }
};
client.onClose = (info) => console.log(info.code, CODES[info.code] ?? info.name, info.reason);
client.onMessage = (message) => console.log(message.tick, message.kind, message.data);
client.connect();
const sent: boolean = client.sendMessage("chat", { text: "gg" });
console.log(sent);
const seq: number | null = client.sendInput({ mx: 1, my: 0, aim: 0.5, fire: false });
if (seq !== null) prediction.sent(seq, { mx: 1, my: 0 }, 100, 20);
// The tick the others are drawn at: the server judges shots against it (lag compensation).
client.sendInput({ mx: 0, my: 0, aim: 0.5, fire: true }, interpolation.renderTick(20));
const flying: [number, number] = projectileAt({ pos: [10, 10], vel: [2, 0], t0: 4 }, 6);
const next: [number, number] = stepPlayer([1, 1], { mx: 1 }, 100, 20);
try {
  applySnapshot(null, { t: "snap", tick: 1, base: -1, seq: 0, n: 0, ids: new Uint8Array(), rm: new Uint8Array(), c: {} }, {});
} catch (error) {
  if (!(error instanceof DesyncError)) throw error;
}
console.log(next, flying, interpolation.sample(20).length, prediction.render(20));
