// The operator console: the rooms of this node, their players and a live
// chart of each room's tick time, and the operator's actions (close a room,
// drain the node), all through the control API on this port.
//
// The API key is typed into the page and kept in this module's memory only:
// never in a URL (it would end up in logs and history), a cookie or storage.
// Every value from the server is put in the page as text (textContent),
// never as HTML: labels and player names are chosen by clients.

const POLL_MS = 1000;
const HISTORY_POINTS = 300; // five minutes at one point a second
const PAGE_SIZE = 500; // the API's largest page (validation.MAX_PAGE)
const MAX_PAGES = 20;

let apiKey = null;
let polling = null;
let selected = null; // room id shown in the detail panel
const rooms = new Map(); // room id -> {info, timed, points: [{p50, max}], row, canvas}
let node = { id: null, state: null, players: 0 };
let nodes = []; // GET /v1/nodes: the cluster's nodes (this node alone without Redis)
const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? `${status}: ${body.error}` : `HTTP ${status}`);
    this.status = status;
  }
}

async function api(method, path) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${apiKey}` },
    cache: "no-store",
    credentials: "omit",
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok && response.status !== 503) throw new ApiError(response.status, body);
  return body;
}

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

async function listRooms() {
  const all = [];
  let cursor = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const query = `limit=${PAGE_SIZE}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : "");
    const body = await api("GET", `/v1/rooms?${query}`);
    all.push(...body.rooms);
    cursor = body.next_cursor;
    if (!cursor) break;
  }
  return all;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

async function pollTickTimes(room) {
  const after = room.timed === null ? "" : `?after=${room.timed}`;
  const body = await api("GET", `/v1/rooms/${encodeURIComponent(room.info.room_id)}/tick-times${after}`);
  room.timed = body.timed;
  room.tick = body.tick;
  if (body.tick_ms.length) {
    room.points.push({ p50: median(body.tick_ms), max: Math.max(...body.tick_ms) });
    if (room.points.length > HISTORY_POINTS) room.points.splice(0, room.points.length - HISTORY_POINTS);
  }
}

function drawChart(canvas, points) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  ctx.fillStyle = "#111418";
  ctx.fillRect(0, 0, width, height);
  if (!points.length) return;
  const top = Math.max(0.1, ...points.map((p) => p.max)) * 1.1;
  const x = (i) => width - (points.length - 1 - i) * (width / (HISTORY_POINTS - 1));
  const y = (v) => height - (v / top) * (height - 4) - 2;
  for (const [key, color] of [["max", "#ff8a65"], ["p50", "#64b5f6"]]) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(x(i), y(p[key])) : ctx.moveTo(x(i), y(p[key]))));
    ctx.stroke();
  }
  ctx.fillStyle = "#8894a3";
  ctx.font = "10px system-ui";
  ctx.fillText(`${top.toFixed(2)} ms`, 3, 11);
}

function labelSpans(labels) {
  const cell = document.createElement("td");
  for (const [k, v] of Object.entries(labels)) {
    const span = document.createElement("span");
    span.className = "label";
    span.textContent = `${k}=${v}`;
    cell.append(span);
  }
  return cell;
}

function textCell(text) {
  const cell = document.createElement("td");
  cell.textContent = String(text);
  return cell;
}

function makeRow(room) {
  const row = document.createElement("tr");
  row.dataset.room = room.info.room_id;
  const chartCell = document.createElement("td");
  room.canvas = document.createElement("canvas");
  room.canvas.width = 240;
  room.canvas.height = 36;
  chartCell.append(room.canvas);
  const actions = document.createElement("td");
  const details = document.createElement("button");
  details.textContent = "Details";
  details.className = "details";
  details.addEventListener("click", () => select(room.info.room_id));
  const close = document.createElement("button");
  close.textContent = "Close";
  close.className = "danger close";
  close.addEventListener("click", () => closeRoom(room.info.room_id));
  actions.append(details, " ", close);
  row.append(textCell(room.info.room_id), textCell(room.info.game), textCell(""), labelSpans(room.info.labels), chartCell, actions);
  room.row = row;
  return row;
}

function renderRooms() {
  const body = $("rooms").querySelector("tbody");
  for (const room of rooms.values()) {
    if (!room.row) body.append(makeRow(room));
    room.row.children[2].textContent = `${room.info.players} / ${room.info.max_players}`;
    room.row.classList.toggle("selected", room.info.room_id === selected);
    drawChart(room.canvas, room.points);
  }
  $("no-rooms").hidden = rooms.size > 0;
  $("node-id").textContent = node.id ?? "-";
  $("node-state").textContent = node.state ?? "-";
  $("node-rooms").textContent = String(rooms.size);
  $("node-players").textContent = String(node.players);
  const list = $("nodes");
  list.replaceChildren();
  for (const n of nodes) {
    const item = document.createElement("li");
    item.textContent = `${n.node_id}: ${n.rooms}/${n.capacity} rooms, ${n.players} players, ` +
      `tick p99 ${n.tick_ms_p99.toFixed(2)} ms${n.draining ? ", draining" : ""}`;
    item.classList.toggle("offline", n.draining);
    list.append(item);
  }
}

function fillList(list, entries) {
  list.replaceChildren();
  for (const [k, v] of entries) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = String(v);
    list.append(dt, dd);
  }
}

async function renderDetail() {
  const room = selected && rooms.get(selected);
  $("detail").hidden = !room;
  if (!room) return;
  $("detail-id").textContent = selected;
  drawChart($("detail-chart"), room.points);
  const detail = await api("GET", `/v1/rooms/${encodeURIComponent(selected)}`);
  if (!detail || selected !== detail.room_id) return;
  fillList($("detail-options"), [
    ["game", detail.game], ["status", detail.status], ["tick", detail.tick], ["tick rate", `${detail.tick_rate} Hz`],
    ["max players", detail.max_players], ["created", detail.created_at], ["overruns", detail.statistics.overruns],
  ]);
  fillList($("detail-labels"), Object.entries(detail.labels));
  const players = $("detail-players");
  players.replaceChildren();
  for (const p of detail.players) {
    const item = document.createElement("li");
    item.dataset.player = String(p.id);
    const label = document.createElement("span");
    label.textContent = `${p.name} (#${p.id})${p.connected ? "" : " - disconnected"}`;
    label.classList.toggle("offline", !p.connected);
    const kick = document.createElement("button");
    kick.textContent = "Kick";
    kick.className = "danger kick";
    const roomId = detail.room_id;
    kick.addEventListener("click", () => kickPlayer(roomId, p.id, p.name).catch(showError));
    item.append(label, " ", kick);
    players.append(item);
  }
}

function select(roomId) {
  selected = roomId;
  renderRooms();
  renderDetail().catch(showError);
}

async function closeRoom(roomId) {
  if (!window.confirm(`Close room ${roomId}? Its players are disconnected (4102).`)) return;
  await api("DELETE", `/v1/rooms/${encodeURIComponent(roomId)}?reason=${encodeURIComponent("closed from the console")}`);
  setStatus(`closing ${roomId}`);
}

async function kickPlayer(roomId, playerId, name) {
  if (!window.confirm(`Kick ${name} (#${playerId}) from ${roomId}? Their session ends (4108).`)) return;
  const path = `/v1/rooms/${encodeURIComponent(roomId)}/players/${playerId}`;
  await api("DELETE", `${path}?reason=${encodeURIComponent("removed from the console")}`);
  setStatus(`kicked ${name} from ${roomId}`);
  await renderDetail();
}

async function drain() {
  if (!window.confirm("Drain this node? It takes no new rooms until restarted; running rooms play on.")) return;
  await api("POST", "/v1/drain");
  await refresh();
}

async function refresh() {
  const [list, ready, cluster] = await Promise.all([listRooms(), api("GET", "/readyz"), api("GET", "/v1/nodes")]);
  node.state = ready ? ready.status : null;
  nodes = cluster && cluster.nodes ? cluster.nodes : [];
  node.id = list.length ? list[0].node_id : node.id;
  node.players = list.reduce((sum, r) => sum + r.players, 0);
  const seen = new Set();
  for (const info of list) {
    seen.add(info.room_id);
    const room = rooms.get(info.room_id) ?? { info, timed: null, tick: 0, points: [], row: null, canvas: null };
    room.info = info;
    rooms.set(info.room_id, room);
  }
  for (const [id, room] of rooms) {
    if (!seen.has(id)) {
      room.row?.remove();
      rooms.delete(id);
      if (selected === id) selected = null;
    }
  }
  await Promise.all([...rooms.values()].map((room) =>
    pollTickTimes(room).catch((e) => { if (e.status !== 404) throw e; })));
  renderRooms();
  await renderDetail();
}

function showError(error) {
  setStatus(String(error.message || error), true);
  if (error.status === 401) stop();
}

function stop() {
  clearInterval(polling);
  polling = null;
  apiKey = null;
  $("main").hidden = true;
}

async function connect(event) {
  event.preventDefault();
  apiKey = $("api-key").value;
  $("api-key").value = ""; // out of the DOM as well
  try {
    await listRooms(); // checks the key
  } catch (error) {
    showError(error);
    return;
  }
  setStatus("connected");
  $("main").hidden = false;
  clearInterval(polling);
  const tick = () => refresh().then(() => setStatus(`connected, updated ${new Date().toLocaleTimeString()}`), showError);
  tick();
  polling = setInterval(tick, POLL_MS);
}

$("login").addEventListener("submit", connect);
$("drain").addEventListener("click", () => drain().catch(showError));

// For tests and scripts: what the page shows, as data.
window.tickroomConsole = {
  state() {
    return {
      connected: polling !== null,
      node: { ...node },
      nodes: nodes.map((n) => ({ id: n.node_id, rooms: n.rooms, players: n.players, draining: n.draining })),
      selected,
      rooms: [...rooms.values()].map((r) => ({
        id: r.info.room_id, players: r.info.players, labels: r.info.labels, tick: r.tick, points: r.points.length,
      })),
      status: $("status").textContent,
    };
  },
};
