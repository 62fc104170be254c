"""End to end over real sockets against a real server process."""

from __future__ import annotations

import time

import trio

from tickroom.client import connect, rejoin
from tickroom.protocol.errors import Code

from .harness import eventually, raw_client, running_server


def pos(world, entity):
    found = world.entity(entity)
    assert found is not None, f"entity {entity} not in world at tick {world.tick}"
    return tuple(found["pos"])


async def test_two_players_see_each_other_move_and_other_rooms_see_nothing(server):
    async with (
        connect(server.url, room="e2e-a", name="ada") as ada,
        connect(server.url, room="e2e-a", name="bob") as bob,
        connect(server.url, room="e2e-b", name="cy") as cy,
    ):
        assert ada.welcome.room == bob.welcome.room == "e2e-a"
        start_world = await bob.next_world()
        ada_start = pos(start_world, ada.player)
        bob_start = pos(await ada.next_world(), bob.player)

        async def play(client, **axes) -> None:
            for _ in range(15):
                await client.send_input(**axes)
                await client.next_world()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: play(ada, mx=1.0))
            nursery.start_soon(lambda: play(bob, my=1.0))

        await eventually(lambda: pos(bob.world, ada.player)[0] > ada_start[0], what="bob to see ada move right")
        await eventually(lambda: pos(ada.world, bob.player)[1] > bob_start[1], what="ada to see bob move down")
        # Each sees the other's inputs confirmed for itself: seq got through.
        assert ada.session.last_processed_seq >= 1 and bob.session.last_processed_seq >= 1

        # The other room: only its own player, and none of room a's events.
        world = await cy.next_world()
        assert world.ids.tolist() == [cy.player]
        names = {e[3] for e in cy.take_events() if e[1] == "join"}
        assert names <= {"cy"}
        assert ada.desyncs == bob.desyncs == cy.desyncs == 0


async def test_ping_measures_a_round_trip(server):
    async with connect(server.url, room="e2e-ping") as client:
        rtt = await client.ping()
        assert 0 < rtt < 5


async def test_a_slow_client_does_not_slow_the_room_and_is_dropped(server):
    async with (
        connect(server.url, room="e2e-slow", name="a") as a,
        connect(server.url, room="e2e-slow", name="b") as b,
        raw_client(server.url) as slow,
    ):
        await slow.join("e2e-slow", name="slow")
        # From here the slow client reads nothing and acks nothing.
        first = (await a.next_world()).tick
        received_a, received_b = a.snapshots_received, b.snapshots_received
        with trio.fail_after(10):
            while (await a.next_world()).tick < first + 60:  # 3 s at 20 Hz, past the 2 s ack timeout
                pass
        # The others got (nearly) every tick's snapshot meanwhile.
        assert a.snapshots_received - received_a >= 55
        assert b.snapshots_received - received_b >= 55
        assert a.closed is None and b.closed is None
        # The slow one, reading at last, finds it was dropped with its reason.
        with trio.fail_after(5):
            await slow.expect_close(Code.ACK_TIMEOUT)
        assert any(isinstance(e, object) for e in slow.session.take_events())
        assert slow.session.world is not None


async def test_rejoin_with_the_session_token_keeps_the_player(server):
    async with connect(server.url, room="e2e-rejoin", name="ada") as ada:
        await ada.send_input(mx=1.0)
        world = await ada.next_world()
        player = ada.player
        await ada._ws.aclose()  # the connection drops (not a leave)
        await ada.wait_closed()
        async with rejoin(ada) as again:
            assert again.player == player
            world = await again.next_world(after=world.tick)
            assert world.entity(player) is not None
            kinds = world.components["kind"].tolist()
            assert kinds.count(0) == 1  # one avatar: the same, no duplicate


async def test_sigterm_closes_clients_with_going_away_and_exits_cleanly():
    with running_server() as proc:
        async with connect(proc.url, room="e2e-drain") as client:
            await client.next_world()
            proc.proc.terminate()
            with trio.fail_after(10):
                closed = await client.wait_closed()
            assert closed.code == Code.GOING_AWAY
        assert await trio.to_thread.run_sync(lambda: proc.proc.wait(timeout=15)) == 0
        assert "stopped" in proc.log()


async def test_entity_gives_components_in_game_units(server):
    async with connect(server.url, room="e2e-units") as client:
        world = await client.next_world()
        raw = world.entity(client.player)["pos"]
        scaled = client.entity(client.player)["pos"]
        scale = client.session.schema["pos"].scale
        assert scaled == [v / scale for v in raw]
        assert client.entity(999_999) is None


async def test_a_client_whose_event_loop_stalls_is_not_closed_for_its_acks():
    """A busy client loop lets 3.5 s of snapshots queue up (more than the
    rate limit's one-second burst, under the default ack timeout); applying
    them back to back must not send one ack each, a burst the server closes
    with 4006: acks are cumulative, one per half tick is enough."""
    with running_server() as proc:
        async with connect(proc.url, room="e2e-stall", name="slow") as client:
            await client.next_world()
            time.sleep(3.5)  # noqa: ASYNC251 - the point: a client loop blocked by the game's own work
            first = client.world.tick
            # The queued snapshots, then two seconds of fresh ones.
            with trio.fail_after(15):
                while client.world.tick < first + 110:
                    await client.next_world()
            assert client.closed is None
            assert [e.code for e in client.errors if e.code == Code.RATE_LIMITED] == []
