"""``tickroom serve --workers 2`` and ``tickroom status`` end to end: a real
parent process supervising two real workers on one real redis-server.

Both workers register; rooms are allocated on both; a SIGKILLed worker is
restarted by the parent (a new pid registers) and its rooms fail over (a
live lease with a newer epoch, and their durable tick moves on); SIGTERM to
the parent drains both workers and it exits 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import trio

from tests import processes
from tests.processes import stop_supervisor
from tickroom.client import connect

from .harness import REPO

API_KEY = "workers-key-0123456789"
TTL_S = 1.0
DEADLINE_S = 20.0
ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


def status(redis_url: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "tickroom.server", "status", "--json", "--redis-url", redis_url],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=20, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = DEADLINE_S) -> Any:
    return processes.wait_for(predicate, what, timeout)


def nodes_by_id(redis_url: str) -> dict[str, dict[str, Any]]:
    return {n["node_id"]: n for n in status(redis_url)["nodes"]}


def registered(redis_url: str, node_ids: set[str]) -> dict | None:
    """The nodes ``node_ids``, once all of them are registered with their
    control URLs (a worker registers before its control API is bound; the
    URL comes with a later heartbeat); else None."""
    nodes = nodes_by_id(redis_url)
    if nodes.keys() == node_ids and all(n["control_url"] for n in nodes.values()):
        return nodes
    return None


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for init to reap it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def test_workers_without_redis_url_is_a_clear_error():
    env = {k: v for k, v in ENV.items() if k != "TICKROOM_REDIS_URL"}
    out = subprocess.run(
        [sys.executable, "-m", "tickroom.server", "serve", "--workers", "2"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert out.returncode == 2
    assert "--workers needs --redis-url" in out.stderr


def test_two_workers_register_fail_over_and_drain(redis_url):
    log_file = tempfile.NamedTemporaryFile(prefix="tickroom-workers-", suffix=".log", delete=False)
    parent = subprocess.Popen(
        [
            sys.executable, "-m", "tickroom.server", "serve", "--host", "127.0.0.1", "--port", "0", "--control-port", "0",
            "--workers", "2", "--redis-url", redis_url, "--api-key", API_KEY, "--node-id", "t",
            "--lease-ttl", str(TTL_S), "--idle-close", "120",
        ],
        cwd=REPO, env=ENV, stdout=log_file, stderr=subprocess.STDOUT,
    )  # fmt: skip

    seen_pids: set[int] = set()  # killed in the end should the parent fail to stop them

    def log() -> str:
        return Path(log_file.name).read_text(errors="replace")

    try:
        # Both workers register, each with its own control API and pid.
        nodes = wait_for(
            lambda: registered(redis_url, {"t-w0", "t-w1"}),
            "both workers to register",
        )
        seen_pids.update(n["pid"] for n in nodes.values())
        assert nodes["t-w0"]["pid"] != nodes["t-w1"]["pid"]
        assert nodes["t-w0"]["url"] != nodes["t-w1"]["url"]
        for node in nodes.values():
            assert f"pid {node['pid']}" in log()

        # Rooms on both: ask each worker's control API directly.
        headers = {"Authorization": f"Bearer {API_KEY}"}
        for node in nodes.values():
            with httpx.Client(base_url=node["control_url"], headers=headers) as api:
                for _ in range(2):
                    answer = api.post("/v1/rooms", json={})
                    assert answer.status_code == 201, answer.text

        def rooms_on_both():
            state = status(redis_url)
            owners = {r["node_id"] for r in state["rooms"]}
            ticking = all(r["durable_tick"] is not None for r in state["rooms"])
            return state if len(state["rooms"]) == 4 and owners == {"t-w0", "t-w1"} and ticking else None

        state = wait_for(rooms_on_both, "rooms on both workers")
        assert state["totals"] == {"nodes": 2, "rooms": 4, "players": 0, "unowned_rooms": 0}
        assert {n["node_id"]: len(n["room_ids"]) for n in state["nodes"]} == {"t-w0": 2, "t-w1": 2}
        victim = next(n for n in state["nodes"] if n["node_id"] == "t-w1")
        moved = {r["room_id"]: r for r in state["rooms"] if r["node_id"] == "t-w1"}

        # SIGKILL one worker: the parent restarts it and its rooms fail over.
        os.kill(victim["pid"], signal.SIGKILL)
        reborn = wait_for(
            lambda: (n := nodes_by_id(redis_url).get("t-w1")) and n["pid"] not in (0, victim["pid"]) and n,
            "a new t-w1 to register",
        )
        seen_pids.add(reborn["pid"])
        assert "worker w1" in log() and "died" in log()

        def failed_over():
            rooms = {r["room_id"]: r for r in status(redis_url)["rooms"]}
            return all(
                (now := rooms.get(room_id)) is not None
                and now["node_id"] is not None
                and now["epoch"] > before["epoch"]
                and (now["durable_tick"] or 0) > (before["durable_tick"] or 0)
                for room_id, before in moved.items()
            )

        wait_for(failed_over, "the killed worker's rooms to tick again elsewhere")

        # SIGTERM to the parent: both workers drain, the parent exits 0.
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=DEADLINE_S) == 0, log()
        assert "forwarding to 2 workers" in log()
        assert "all 2 workers exited" in log()
        assert status(redis_url)["nodes"] == []
    finally:
        stop_supervisor(parent, seen_pids)
        log_file.close()


DEFAULT_PORTS = {"w0": (7350, 7351), "w1": (7352, 7353)}  # game, control: --port + 2i, --control-port + 2i


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def join_and_play(url: str, room: str) -> int:
    """Join ``room`` at ``url`` and wait for a world: the tick seen."""
    with trio.fail_after(DEADLINE_S):
        async with connect(url, room=room, name="port-check") as client:
            world = await client.next_world()
            return world.tick


def test_two_workers_on_the_default_ports_both_serve(redis_url):
    busy = [p for ports in DEFAULT_PORTS.values() for p in ports if not port_free(p)]
    assert not busy, f"ports {busy} are taken on this machine: this test needs the default ports free"
    log_file = tempfile.NamedTemporaryFile(prefix="tickroom-workers-ports-", suffix=".log", delete=False)
    env = {k: v for k, v in ENV.items() if k not in ("TICKROOM_PORT", "TICKROOM_CONTROL_PORT")}
    parent = subprocess.Popen(
        [
            sys.executable, "-m", "tickroom.server", "serve", "--host", "127.0.0.1", "--workers", "2",
            "--redis-url", redis_url, "--api-key", API_KEY, "--node-id", "d",
        ],
        cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT,
    )  # fmt: skip
    pids: list[int] = []

    def log() -> str:
        return Path(log_file.name).read_text(errors="replace")

    try:
        nodes = wait_for(
            lambda: registered(redis_url, {"d-w0", "d-w1"}),
            "both workers to register with their control URLs",
        )
        pids = [n["pid"] for n in nodes.values()]
        headers = {"Authorization": f"Bearer {API_KEY}"}
        for worker, (game_port, control_port) in DEFAULT_PORTS.items():
            node = nodes[f"d-{worker}"]
            assert node["url"] == f"ws://127.0.0.1:{game_port}"
            assert node["control_url"].rstrip("/") == f"http://127.0.0.1:{control_port}"
            with httpx.Client(base_url=node["control_url"], headers=headers) as api:
                assert api.get("/healthz").status_code == 200
                answer = api.post("/v1/rooms", json={})  # a room on this worker
                assert answer.status_code == 201, answer.text
                room = answer.json()["room_id"]
            assert trio.run(join_and_play, node["url"], room) >= 0
        assert "Address already in use" not in log() and "died" not in log(), log()

        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=DEADLINE_S) == 0, log()
    finally:
        stop_supervisor(parent, pids)
        log_file.close()


def test_workers_stop_when_the_parent_is_killed(redis_url):
    parent = subprocess.Popen(
        [
            sys.executable, "-m", "tickroom.server", "serve", "--host", "127.0.0.1", "--port", "0", "--control-port", "0",
            "--workers", "2", "--redis-url", redis_url, "--node-id", "o",
        ],
        cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    pids: list[int] = []
    try:
        nodes = wait_for(
            lambda: (n := nodes_by_id(redis_url)).keys() == {"o-w0", "o-w1"} and n, "both workers to register"
        )
        pids = [n["pid"] for n in nodes.values()]
        parent.kill()
        parent.wait()
        # Orphaned, each worker drains, unregisters and exits.
        wait_for(lambda: not any(alive(pid) for pid in pids), "the orphaned workers to exit")
        assert status(redis_url)["nodes"] == []
    finally:
        stop_supervisor(parent, pids)
