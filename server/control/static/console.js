// The operator console: the rooms of every node of the cluster, their
// players and a live chart of each room's tick time, and the operator's
// actions (close a room, kick a player, drain a node), all through the
// control API on this port: another node's rooms through
// /v1/nodes/{node}/..., which this node forwards with the cluster's key, so
// the page never calls another origin.
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
let selected = null; // key (roomKey) of the room shown in the detail panel
const rooms = new Map(); // roomKey -> {node, info, timed, points: [{p50, max}], row, canvas}
let node = { id: null, state: null, players: 0 };
let nodes = []; // GET /v1/nodes: the cluster's nodes (this node alone without Redis)
const nodeErrors = new Map(); // node id -> why its rooms could not be read this round
const roomKey = (nodeId, roomId) => `${nodeId}/${roomId}`;
const nodePath = (nodeId) => `/v1/nodes/${encodeURIComponent(nodeId)}`;
const roomPath = (room) => `${nodePath(room.node)}/rooms/${encodeURIComponent(room.info.room_id)}`;
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

// The rooms under base: "/v1" (this node's) or nodePath(id) (that node's).
async function listRooms(base = "/v1") {
  const all = [];
  let cursor = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const query = `limit=${PAGE_SIZE}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : "");
    const body = await api("GET", `${base}/rooms?${query}`);
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
  const body = await api("GET", `${roomPath(room)}/tick-times${after}`);
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

function makeRow(key, room) {
  const row = document.createElement("tr");
  row.dataset.room = room.info.room_id;
  row.dataset.node = room.node;
  const chartCell = document.createElement("td");
  room.canvas = document.createElement("canvas");
  room.canvas.width = 240;
  room.canvas.height = 36;
  chartCell.append(room.canvas);
  const actions = document.createElement("td");
  const details = document.createElement("button");
  details.textContent = "Details";
  details.className = "details";
  details.addEventListener("click", () => select(key));
  const close = document.createElement("button");
  close.textContent = "Close";
  close.className = "danger close";
  close.addEventListener("click", () => closeRoom(room).catch(showError));
  actions.append(details, " ", close);
  row.append(
    textCell(room.info.room_id), textCell(room.node), textCell(room.info.game), textCell(""),
    labelSpans(room.info.labels), chartCell, actions,
  );
  room.row = row;
  return row;
}

function renderRooms() {
  const body = $("rooms").querySelector("tbody");
  for (const [key, room] of rooms) {
    if (!room.row) body.append(makeRow(key, room));
    room.row.children[3].textContent = `${room.info.players} / ${room.info.max_players}`;
    room.row.classList.toggle("selected", key === selected);
    drawChart(room.canvas, room.points);
  }
  $("no-rooms").hidden = rooms.size > 0;
  $("node-id").textContent = node.id ?? "-";
  $("node-state").textContent = node.state ?? "-";
  $("node-rooms").textContent = String([...rooms.values()].filter((r) => r.node === node.id).length);
  $("node-players").textContent = String(node.players);
  const list = $("nodes");
  list.replaceChildren();
  for (const n of nodes) {
    const item = document.createElement("li");
    item.dataset.node = n.node_id;
    const text = document.createElement("span");
    const error = nodeErrors.get(n.node_id);
    text.textContent = `${n.node_id}${n.node_id === node.id ? " (this node)" : ""}: ${n.rooms}/${n.capacity} rooms, ` +
      `${n.players} players, tick p99 ${n.tick_ms_p99.toFixed(2)} ms${n.draining ? ", draining" : ""}` +
      (error ? ` - unreachable: ${error}` : "");
    item.classList.toggle("offline", n.draining || Boolean(error));
    item.append(text);
    if (!n.draining) {
      const drainButton = document.createElement("button");
      drainButton.textContent = "Drain";
      drainButton.className = "danger drain-node";
      drainButton.addEventListener("click", () => drainNode(n.node_id).catch(showError));
      item.append(" ", drainButton);
    }
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
  const key = selected;
  $("detail-id").textContent = `${room.info.room_id} on ${room.node}`;
  drawChart($("detail-chart"), room.points);
  const detail = await api("GET", roomPath(room));
  if (!detail || selected !== key) return;
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
    kick.addEventListener("click", () => kickPlayer(room, p.id, p.name).catch(showError));
    item.append(label, " ", kick);
    players.append(item);
  }
}

function select(key) {
  selected = key;
  renderRooms();
  renderDetail().catch(showError);
}

async function closeRoom(room) {
  const roomId = room.info.room_id;
  if (!window.confirm(`Close room ${roomId} on ${room.node}? Its players are disconnected (4102).`)) return;
  await api("DELETE", `${roomPath(room)}?reason=${encodeURIComponent("closed from the console")}`);
  setStatus(`closing ${roomId} on ${room.node}`);
}

async function kickPlayer(room, playerId, name) {
  const roomId = room.info.room_id;
  if (!window.confirm(`Kick ${name} (#${playerId}) from ${roomId}? Their session ends (4108).`)) return;
  const path = `${roomPath(room)}/players/${playerId}`;
  await api("DELETE", `${path}?reason=${encodeURIComponent("removed from the console")}`);
  setStatus(`kicked ${name} from ${roomId}`);
  await renderDetail();
}

async function drainNode(nodeId) {
  if (!window.confirm(`Drain node ${nodeId}? It takes no new rooms until restarted; running rooms play on.`)) return;
  await api("POST", `${nodePath(nodeId)}/drain`);
  await refresh();
}

async function drain() {
  if (!window.confirm("Drain this node? It takes no new rooms until restarted; running rooms play on.")) return;
  await api("POST", "/v1/drain");
  await refresh();
}

// One node's rooms; a node that cannot answer (gone, unreachable) is noted
// in the node list and keeps its rooms off the table, without stopping the
// others' refresh.
async function nodeRooms(nodeId) {
  try {
    const list = await listRooms(nodePath(nodeId));
    nodeErrors.delete(nodeId);
    return list.map((info) => [nodeId, info]);
  } catch (error) {
    if (error.status === 401) throw error;
    nodeErrors.set(nodeId, error.message);
    return [];
  }
}

async function refresh() {
  const [ready, cluster] = await Promise.all([api("GET", "/readyz"), api("GET", "/v1/nodes")]);
  node.state = ready ? ready.status : null;
  nodes = cluster && cluster.nodes ? cluster.nodes : [];
  node.id = cluster && cluster.this_node ? cluster.this_node : node.id;
  const listed = (await Promise.all(nodes.map((n) => nodeRooms(n.node_id)))).flat();
  node.players = listed.filter(([nodeId]) => nodeId === node.id).reduce((sum, [, r]) => sum + r.players, 0);
  const seen = new Set();
  for (const [nodeId, info] of listed) {
    const key = roomKey(nodeId, info.room_id);
    seen.add(key);
    const room = rooms.get(key) ?? { node: nodeId, info, timed: null, tick: 0, points: [], row: null, canvas: null };
    room.info = info;
    rooms.set(key, room);
  }
  for (const [key, room] of rooms) {
    if (!seen.has(key)) {
      room.row?.remove();
      rooms.delete(key);
      if (selected === key) selected = null;
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
      nodes: nodes.map((n) => ({
        id: n.node_id, rooms: n.rooms, players: n.players, draining: n.draining, error: nodeErrors.get(n.node_id) ?? null,
      })),
      selected: selected && rooms.has(selected) ? rooms.get(selected).info.room_id : null,
      rooms: [...rooms.values()].map((r) => ({
        id: r.info.room_id, node: r.node, players: r.info.players, labels: r.info.labels, tick: r.tick, points: r.points.length,
      })),
      status: $("status").textContent,
    };
  },
};
