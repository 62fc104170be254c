"""A game from outside tickroom, run by real server processes: the example
game (examples/tag, installed into the test venv as its own package with
its entry point), ``--game module.path:Class``, the exit 2 of an unknown or
broken game, a room with its own options and tick rate that fails over
(SIGKILL) intact, and the game under ``--workers 2`` with a real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile

import httpx
import trio

from tests.processes import stop_supervisor
from tickroom.client import connect

from .harness import REPO, eventually, running_server
from .test_workers import API_KEY, DEADLINE_S, ENV, nodes_by_id, wait_for

TTL_S = 1.5
RECOVERY_DEADLINE_S = TTL_S + 8.0
EXIT_DEADLINE_S = 30.0


def serve_exit(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "tickroom.server", "serve", "--port", "0", "--control-port", "0", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=EXIT_DEADLINE_S,
    )  # fmt: skip


def test_an_unknown_game_exits_2_naming_the_known_games() -> None:
    done = serve_exit("--game", "chess")
    assert done.returncode == 2, done.stderr
    assert "unknown game 'chess'; known games: arena, tag" in done.stderr


def test_a_game_that_fails_to_import_exits_2_naming_the_known_games() -> None:
    done = serve_exit("--game", "tests.games.raises_on_import:Game")
    assert done.returncode == 2, done.stderr
    assert "broken on purpose" in done.stderr and "known games: arena, tag" in done.stderr


def test_workers_resolve_the_game_before_starting_any() -> None:
    done = serve_exit("--game", "chess", "--workers", "2", "--redis-url", "redis://127.0.0.1:1")
    assert done.returncode == 2 and "known games" in done.stderr


async def play(client, ticks: int, mx: float = 1.0) -> None:
    for _ in range(ticks):
        await client.send_input(mx=mx, my=0.0)
        await client.next_world()


async def test_the_example_game_runs_from_its_entry_point_and_clients_play_it() -> None:
    with running_server("--game", "tag") as server:
        with trio.fail_after(20):
            async with (
                connect(server.url, room="tag-1", name="ada") as ada,
                connect(server.url, room="tag-1", name="bob") as bob,
            ):
                assert ada.welcome.game == bob.welcome.game == "tag"
                assert ada.options == {"size": 50.0, "speed": 10.0, "cooldown": 1.0}
                await play(ada, 10)
                await bob.next_world(after=ada.world.tick)
                seen = bob.entity(ada.player)
                assert seen is not None and set(seen) == {"pos", "it", "score"}
                # Exactly one player is "it".
                its = [bob.entity(p)["it"] for p in (ada.player, bob.player)]
                assert sorted(its) == [0, 1]


async def test_module_class_loads_a_game_without_packaging() -> None:
    with running_server("--game", "tag_game.tag:Tag") as server:
        with trio.fail_after(20):
            async with connect(server.url, name="cy") as cy:
                assert cy.welcome.game == "tag"
                await play(cy, 3)


async def http(method: str, url: str, body: dict | None = None) -> dict:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.request(method, url, json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()


async def test_a_room_with_its_own_options_and_tick_rate_fails_over_intact(redis_url) -> None:
    flags = ("--redis-url", redis_url, "--lease-ttl", str(TTL_S), "--checkpoint-interval", "10",
             "--tick-rate", "20", "--rejoin-grace", "20", "--idle-close", "30")  # fmt: skip
    with running_server(*flags) as a, running_server(*flags) as b:
        body = {"game": "tag", "tick_rate": 30, "max_players": 4, "options": {"size": 80, "cooldown": 0.5},
                "labels": {"phase": "play"}, "idempotency_key": "fo-tag"}  # fmt: skip
        room = await http("POST", a.control_url + "/v1/rooms", body)
        room_id = room["room_id"]
        url = room["ws_url"]
        with trio.fail_after(RECOVERY_DEADLINE_S * 3):
            async with connect(url, room=room_id, name="ada", reconnect=True, urls=[a.url, b.url]) as ada:
                assert ada.welcome.tick_rate == 30
                options = {"size": 80.0, "speed": 10.0, "cooldown": 0.5}
                assert ada.options == options
                await play(ada, 25)
                owner, other = (a, b) if url == a.url else (b, a)
                owner.proc.kill()
                await eventually(lambda: ada.url == other.url, timeout=RECOVERY_DEADLINE_S, what="the client to move")
                await ada.next_world(after=ada.world.tick)
                # The new owner runs the room with its own config, not its defaults.
                assert ada.welcome.tick_rate == 30 and ada.options == options
                moved = await http("GET", other.control_url + f"/v1/rooms/{room_id}")
                assert (moved["tick_rate"], moved["max_players"]) == (30, 4)
                assert moved["options"] == options and moved["labels"] == {"phase": "play"}
                listed = await http("GET", other.control_url + "/v1/rooms?label=phase:play")
                assert [r["room_id"] for r in listed["rooms"]] == [room_id]
                await play(ada, 5)


async def test_tag_under_two_workers_with_redis_plays_and_fails_over_to_the_other_worker(redis_url) -> None:
    """``serve --game tag --workers 2``: each worker resolves the game, rooms
    of it open on both, clients play them; SIGKILL the worker that owns one:
    the other worker restores the tag room (same options) and its client
    plays on there, while the parent restarts the dead worker."""
    log_file = tempfile.NamedTemporaryFile(prefix="tickroom-tag-workers-", suffix=".log", delete=False)
    parent = subprocess.Popen(
        [
            sys.executable, "-m", "tickroom.server", "serve", "--host", "127.0.0.1", "--port", "0", "--control-port", "0",
            "--workers", "2", "--redis-url", redis_url, "--api-key", API_KEY, "--node-id", "tag", "--game", "tag",
            "--lease-ttl", str(TTL_S), "--checkpoint-interval", "10", "--rejoin-grace", "20", "--idle-close", "60",
        ],
        cwd=REPO, env=ENV, stdout=log_file, stderr=subprocess.STDOUT,
    )  # fmt: skip
    pids: set[int] = set()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    options = {"size": 80.0, "speed": 12.0, "cooldown": 1.0}
    try:
        nodes = await trio.to_thread.run_sync(
            lambda: wait_for(
                lambda: (
                    (n := nodes_by_id(redis_url)).keys() == {"tag-w0", "tag-w1"}
                    and all(x["control_url"] for x in n.values())
                    and n
                ),
                "both workers to register",
            )
        )
        pids.update(n["pid"] for n in nodes.values())
        urls = [n["url"] for n in nodes.values()]
        # One room of tag on each worker, with the matchmaker's options.
        rooms = []
        async with httpx.AsyncClient(headers=headers, timeout=5) as api:
            for node in nodes.values():
                answer = await api.post(node["control_url"] + "/v1/rooms", json={"options": {"size": 80, "speed": 12}})
                assert answer.status_code == 201, answer.text
                rooms.append(answer.json())
        assert {room["ws_url"] for room in rooms} == set(urls), rooms  # placed on both workers
        with trio.fail_after(RECOVERY_DEADLINE_S * 4):
            async with (
                connect(rooms[0]["ws_url"], room=rooms[0]["room_id"], name="ada", reconnect=True, urls=urls) as ada,
                connect(rooms[1]["ws_url"], room=rooms[1]["room_id"], name="bob", reconnect=True, urls=urls) as bob,
            ):
                for client in (ada, bob):
                    assert client.welcome.game == "tag" and client.options == options
                    await play(client, 10)
                victim = next(n for n in nodes.values() if n["url"] == rooms[0]["ws_url"])
                os.kill(victim["pid"], signal.SIGKILL)
                await eventually(lambda: ada.url != victim["url"], timeout=RECOVERY_DEADLINE_S, what="ada to move")
                before = ada.world.tick
                await play(ada, 5)
                assert ada.world.tick > before and ada.welcome.game == "tag" and ada.options == options
                await play(bob, 5)  # the other worker's own room never stopped
        # The parent restarts the killed worker (it resolves the game too).
        reborn = await trio.to_thread.run_sync(
            lambda: wait_for(
                lambda: (
                    (n := nodes_by_id(redis_url).get(victim["node_id"])) and n["pid"] not in (0, victim["pid"]) and n
                ),
                "the killed worker to come back",
            )
        )
        pids.add(reborn["pid"])
        parent.send_signal(signal.SIGTERM)
        assert await trio.to_thread.run_sync(lambda: parent.wait(timeout=DEADLINE_S)) == 0
    finally:
        stop_supervisor(parent, pids)
        log_file.close()
