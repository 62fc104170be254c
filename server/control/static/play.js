// The demo page: join a room of any game, steer with the keyboard, and watch
// the network figures. The game comes from the room (the welcome): arena gets
// its own view (aim and shoot with the mouse, prediction, health bars); any
// other game is drawn from its schema (schema_view.js: entities with a
// 2-component position as circles, the other components in the side panel).
//
// The game server's WebSocket URL comes from ?ws=ws://host:port; by default
// the page's own host on the default game port, 7350. ?name= and ?room=
// prefill the form; ?game=NAME creates the room (if new) with that game.

import { TickroomClient } from "./tickroom.js";
import { ARENA_SIZE, KIND_PLAYER, MAX_HP, PLAYER_RADIUS, PROJECTILE_RADIUS, arenaSize, fogRadius, placeAt } from "./arena.js";
import { Interpolation, Prediction } from "./predict.js";
import { Extent, drawWorld, genericInput, panelTable } from "./schema_view.js";

const DEFAULT_GAME_PORT = 7350;
const STATS_WINDOW_MS = 1000; // snapshot rate and bytes/s are over the last second
const EVENT_LINES = 8;

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const wsUrl = params.get("ws") || `ws://${location.hostname || "127.0.0.1"}:${DEFAULT_GAME_PORT}`;
$("server-url").textContent = wsUrl;
if (params.get("name")) $("name").value = params.get("name");
if (params.get("room")) $("room").value = params.get("room");
const gameParam = params.get("game") || null; // null: the room's game, or the server's default for a new room

const canvas = $("canvas");
const ctx = canvas.getContext("2d");
const keys = new Set();
const mouse = { x: null, y: null, down: false };
const names = new Map(); // entity id -> name
const eventLines = [];
const prediction = new Prediction();
const interpolation = new Interpolation();
let client = null;
let inputTimer = null;
let lastAim = 0; // radians: kept while the mouse is off the canvas
let size = ARENA_SIZE; // units: the room's arena side, from the welcome's options
let fog = 0; // units: the room's view radius (option "fog"), 0 for none
let fogCentre = null; // [x, y] units: where the fog's clear circle was last drawn
let arena = true; // the room's game is arena (its own view); else the schema-driven one
let extent = null; // schema view: the part of the world the canvas shows
let snapTimes = []; // arrival times (ms) of recent snapshots
let byteSamples = []; // [time ms, total bytes received]

// -- joining ---------------------------------------------------------------------

$("join").addEventListener("submit", (ev) => {
  ev.preventDefault();
  // Names are at most 32 code points (4.1): count code points, not UTF-16 units.
  const name = Array.from($("name").value.trim()).slice(0, 32).join("");
  const room = $("room").value.trim() || "lobby";
  start(name, room);
  document.activeElement.blur(); // keys now steer, not type
});

$("leave-button").addEventListener("click", () => { if (client) client.leave(); });

function start(name, room) {
  if (client) client.close(); // its callbacks must not touch the new session
  clearInterval(inputTimer);
  prediction.reset();
  interpolation.reset();
  names.clear();
  client = new TickroomClient({ url: wsUrl, room, name, game: gameParam });
  client.onStatus = (text) => { $("status").textContent = text; };
  client.onWelcome = (welcome) => {
    for (const [id, n] of welcome.players) names.set(id, n);
    arena = welcome.game === "arena";
    extent = new Extent(welcome.options);
    $("game-name").textContent = welcome.game;
    document.title = `tickroom ${welcome.game}`;
    size = arenaSize(welcome.options);
    fog = fogRadius(welcome.options);
    prediction.size = size;
    prediction.reset();
    interpolation.reset();
    // Arena projectiles are sent once and flown here (7.3), not blended.
    interpolation.place = arena ? placeAt : null;
    clearInterval(inputTimer);
    // One input per tick: one input matches one simulation step (9).
    inputTimer = setInterval(sendInput, 1000 / welcome.rate);
    $("join-button").textContent = "switch";
    $("leave-button").hidden = false;
  };
  client.onSnapshot = onSnapshot;
  client.onEvent = onEvent;
  client.onError = (err) => logEvent(`error ${err.code} ${err.name}: ${err.msg}`);
  client.onClose = (info) => {
    clearInterval(inputTimer);
    logEvent(`closed ${info.code} ${info.name} ${info.reason || ""}`);
    $("join-button").textContent = "join";
    $("leave-button").hidden = true;
  };
  client.connect();
}

function onSnapshot(world) {
  const now = performance.now();
  snapTimes.push(now);
  const rate = client.welcome.rate;
  const entities = client.entities(world);
  interpolation.push(world.tick, entities, rate);
  const me = entities.find((e) => e.id === client.player);
  if (me && arena) prediction.reconcile(me.pos, client.serverSeq, me.hp, rate);
}

function onEvent(ev) {
  const [, kind, a, b] = ev;
  const who = (id) => names.get(id) || `#${id}`;
  if (kind === "join") { names.set(a, b); logEvent(`${b} joined`); }
  else if (kind === "leave") { logEvent(`${who(a)} left`); }
  else if (kind === "kill") logEvent(`${who(a)} killed ${who(b)}`);
  else if (kind === "respawn") logEvent(`${who(a)} respawned`);
}

function logEvent(text) {
  eventLines.unshift(text);
  eventLines.length = Math.min(eventLines.length, EVENT_LINES);
  $("events").replaceChildren(...eventLines.map((t) => Object.assign(document.createElement("li"), { textContent: t })));
}

// -- controls --------------------------------------------------------------------

const KEYMAP = { w: [0, -1], arrowup: [0, -1], s: [0, 1], arrowdown: [0, 1], a: [-1, 0], arrowleft: [-1, 0], d: [1, 0], arrowright: [1, 0] };
addEventListener("keydown", (ev) => {
  if (ev.target instanceof HTMLInputElement) return;
  const key = ev.key.toLowerCase();
  if (KEYMAP[key]) { keys.add(key); ev.preventDefault(); }
});
addEventListener("keyup", (ev) => keys.delete(ev.key.toLowerCase()));
addEventListener("blur", () => keys.clear());
canvas.addEventListener("mousemove", (ev) => {
  const r = canvas.getBoundingClientRect();
  mouse.x = ((ev.clientX - r.left) / r.width) * size;
  mouse.y = ((ev.clientY - r.top) / r.height) * size;
});
canvas.addEventListener("mousedown", (ev) => { mouse.down = true; ev.preventDefault(); });
addEventListener("mouseup", () => { mouse.down = false; });

function stick() {
  let mx = 0, my = 0;
  for (const key of keys) { mx += KEYMAP[key][0]; my += KEYMAP[key][1]; }
  return [Math.max(-1, Math.min(1, mx)), Math.max(-1, Math.min(1, my))];
}

function controls() {
  const [mx, my] = stick();
  const me = prediction.pos;
  if (me && mouse.x !== null) lastAim = Math.atan2(mouse.y - me[1], mouse.x - me[0]);
  // Every field in every input: an absent field means 0, not "unchanged" (4.2).
  return { mx, my, aim: lastAim, fire: mouse.down };
}

function sendInput() {
  if (!client || client.state !== "joined") return;
  if (!arena) {
    client.sendInput(genericInput(client.welcome.inputs, stick(), mouse.down));
    return;
  }
  const input = controls();
  // The tick the player sees the others at (9): the server judges its
  // shots against that world (lag compensation, 7.3).
  const seen = $("raw").checked ? null : interpolation.renderTick(client.welcome.rate);
  const seq = client.sendInput(input, seen);
  const me = client.entity(client.player);
  if (seq !== null) prediction.sent(seq, input, me ? me.hp : MAX_HP, client.welcome.rate);
}

// -- drawing ---------------------------------------------------------------------

function colorOf(id) { return `hsl(${(id * 137.5) % 360} 70% 60%)`; }

function draw() {
  requestAnimationFrame(draw);
  if (client && client.welcome && !arena) {
    const w = client.welcome;
    drawWorld(ctx, canvas, client.entities(), { schema: w.schema, extent, me: client.player, names });
    updatePanels();
    return;
  }
  const s = canvas.width / size; // pixels per unit
  ctx.fillStyle = "#0b1016";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = "#18222e";
  ctx.lineWidth = 1;
  for (let g = 10; g < size; g += 10) {
    ctx.beginPath(); ctx.moveTo(g * s, 0); ctx.lineTo(g * s, canvas.height); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(0, g * s); ctx.lineTo(canvas.width, g * s); ctx.stroke();
  }
  ctx.strokeStyle = "#3a4a5e"; ctx.lineWidth = 3; ctx.strokeRect(1.5, 1.5, canvas.width - 3, canvas.height - 3);
  fogCentre = null;
  if (client && client.world) {
    const shown = visibleEntities();
    for (const e of shown) drawEntity(e, s);
    if (fog) drawFog(shown.find((e) => e.id === client.player), s);
  }
  updatePanels();
}

/** The fog: what lies beyond the view radius of our own player is unknown
 * (the server does not send it, docs/protocol.md 6.1), so it is shaded,
 * with the clear circle centred on where our player is drawn. */
function drawFog(me, s) {
  if (!me) return;
  const [x, y] = [me.pos[0] * s, me.pos[1] * s];
  ctx.save();
  ctx.fillStyle = "rgba(4, 6, 10, 0.78)";
  ctx.beginPath();
  ctx.rect(0, 0, canvas.width, canvas.height);
  ctx.arc(x, y, fog * s, 0, 2 * Math.PI, true); // counter-clockwise: a hole in the rectangle
  ctx.fill("evenodd");
  ctx.strokeStyle = "#2c3a4a"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.arc(x, y, fog * s, 0, 2 * Math.PI); ctx.stroke();
  ctx.restore();
  fogCentre = me.pos;
}

/** What to draw: raw newest state, or interpolated others + predicted self. */
function visibleEntities() {
  const rate = client.welcome.rate;
  if ($("raw").checked) {
    const tick = client.world.tick;
    return arena ? client.entities().map((e) => placeAt(e, tick)) : client.entities();
  }
  const out = interpolation.sample(rate).filter((e) => e.id !== client.player);
  const me = client.entity(client.player);
  const pos = prediction.render(rate);
  if (me) out.push(pos ? { ...me, pos, aim: lastAim } : me);
  return out;
}

function drawEntity(e, s) {
  const [x, y] = [e.pos[0] * s, e.pos[1] * s];
  if (e.kind !== KIND_PLAYER) {
    ctx.fillStyle = colorOf(e.owner);
    ctx.beginPath(); ctx.arc(x, y, Math.max(2, PROJECTILE_RADIUS * s), 0, 2 * Math.PI); ctx.fill();
    return;
  }
  const dead = e.hp <= 0;
  const r = PLAYER_RADIUS * s;
  ctx.globalAlpha = dead ? 0.3 : 1;
  ctx.fillStyle = colorOf(e.id);
  ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.fill();
  if (e.id === client.player) { ctx.strokeStyle = "#fff"; ctx.lineWidth = 2; ctx.stroke(); }
  ctx.strokeStyle = colorOf(e.id); ctx.lineWidth = 2;
  ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + Math.cos(e.aim) * r * 2, y + Math.sin(e.aim) * r * 2); ctx.stroke();
  ctx.fillStyle = "#300"; ctx.fillRect(x - r, y - r - 8, 2 * r, 4);
  ctx.fillStyle = "#4caf50"; ctx.fillRect(x - r, y - r - 8, (2 * r * e.hp) / MAX_HP, 4);
  ctx.fillStyle = "#d8e0ea"; ctx.font = "11px sans-serif"; ctx.textAlign = "center";
  ctx.fillText(names.get(e.id) || `#${e.id}`, x, y + r + 12);
  ctx.globalAlpha = 1;
}

function networkFigures() {
  const now = performance.now();
  snapTimes = snapTimes.filter((t) => t > now - STATS_WINDOW_MS);
  const bytes = client ? client.stats.bytes : 0;
  byteSamples.push([now, bytes]);
  byteSamples = byteSamples.filter(([t]) => t > now - STATS_WINDOW_MS);
  const span = (now - byteSamples[0][0]) / 1000;
  return {
    snapshotRate: snapTimes.length * (1000 / STATS_WINDOW_MS),
    bytesPerSecond: span > 0.2 ? (bytes - byteSamples[0][1]) / span : 0,
  };
}

let figures = { snapshotRate: 0, bytesPerSecond: 0 };
function updatePanels() {
  figures = networkFigures();
  if (!client) return;
  const w = client.welcome;
  const rtt = client.stats.rtt === null ? "-" : `${client.stats.rtt.toFixed(1)} ms`;
  $("overlay").textContent = [
    `${client.state}${w ? ` ${w.room} (player ${w.player})` : ""}`,
    `RTT       ${rtt}`,
    `snapshots ${figures.snapshotRate.toFixed(0)}/s${w ? ` (tick rate ${w.rate})` : ""}`,
    `received  ${(figures.bytesPerSecond / 1024).toFixed(1)} KiB/s`,
    `tick      ${client.newestTick}`,
    `pending   ${arena ? prediction.pending.length : "-"} inputs`,
    `view      ${!arena ? "schema view, server state" : $("raw").checked ? "raw server state" : "predicted + interpolated"}`,
    ...(client.lastError ? [`error     ${client.lastError.code} ${client.lastError.name}`] : []),
    ...(client.stats.desyncs ? [`desyncs   ${client.stats.desyncs}`] : []),
  ].join("\n");
  if (!arena) {
    if (w) showTable(panelTable(client.entities(), { schema: w.schema, names }));
    return;
  }
  $("scores").tHead.rows[0].replaceChildren(...["name", "hp", "kills"].map((t) => Object.assign(document.createElement("th"), { textContent: t })));
  const rows = client.entities().filter((e) => e.kind === KIND_PLAYER).sort((a, b) => b.score - a.score);
  $("scores").tBodies[0].replaceChildren(...rows.map((e) => {
    const tr = document.createElement("tr");
    if (e.id === client.player) tr.className = "me";
    for (const text of [names.get(e.id) || `#${e.id}`, e.hp, e.score]) tr.appendChild(Object.assign(document.createElement("td"), { textContent: text }));
    return tr;
  }));
}

/** The schema view's side panel: one row per entity, one column per component. */
function showTable({ head, rows, ids }) {
  const cell = (tag, text) => Object.assign(document.createElement(tag), { textContent: text });
  $("scores").tHead.rows[0].replaceChildren(...head.map((t) => cell("th", t)));
  $("scores").tBodies[0].replaceChildren(...rows.map((row, i) => {
    const tr = document.createElement("tr");
    if (ids[i] === client.player) tr.className = "me";
    for (const text of row) tr.appendChild(cell("td", text));
    return tr;
  }));
}

requestAnimationFrame(draw);

// -- for tests and the curious ------------------------------------------------------

window.tickroom = {
  get client() { return client; },
  /** A JSON-able summary of what the page knows, for tests and debugging. */
  debugState() {
    if (!client) return { state: "idle" };
    const w = client.welcome;
    return {
      state: client.state,
      url: client.url,
      room: w ? w.room : null,
      game: w ? w.game : null,
      view: w ? (arena ? "arena" : "schema") : null,
      panel: Array.from($("scores").rows, (tr) => Array.from(tr.cells, (td) => td.textContent)),
      player: client.player,
      rate: w ? w.rate : null,
      tick: client.newestTick,
      serverSeq: client.serverSeq,
      nextSeq: client.nextSeq,
      rtt: client.stats.rtt,
      snapshots: client.stats.snapshots,
      desyncs: client.stats.desyncs,
      rejoins: client.stats.rejoins,
      snapshotRate: figures.snapshotRate,
      bytesPerSecond: figures.bytesPerSecond,
      // The newest world's entities, projectiles placed where they are at its tick.
      entities: arena && client.world ? client.entities().map((e) => placeAt(e, client.world.tick)) : client.entities(),
      me: client.entity(client.player),
      predicted: prediction.pos,
      renderTick: w ? interpolation.renderTick(w.rate) : null, // where others are drawn
      names: Object.fromEntries(names),
      events: eventLines.slice(),
      lastError: client.lastError,
      closeInfo: client.closeInfo,
      overlay: $("overlay").textContent,
      fog, // the room's view radius, units (0: none)
      fogCentre, // where the fog's clear circle was last drawn, units (null: not drawn)
    };
  },
};
