"""The card game end to end, over real sockets on a real node: a hand (a
hidden component) reaches only its holder, never a byte of it in another
player's frames; game messages go both ways, targeted; a bad message gets
its error code and the connection plays on."""

from __future__ import annotations

import httpx
import msgpack
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.games.cards import HAND, PILE_ID, Cards
from tests.rawws import OP_BINARY, RawWebSocket, frame
from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code
from tickroom.protocol.game_messages import RoomMessage
from tickroom.protocol.websocket_frames import CloseFrame
from tickroom.testing import serve_game

DEADLINE_S = 20.0


class RecordingSocket(RawWebSocket):
    """A raw client that keeps every server payload it read and acks each
    snapshot, as a well-behaved client does."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        super().__init__(stream)
        self.payloads: list[bytes] = []
        self.to_send: list[bytes] = []

    def _feed(self, data: bytes) -> None:
        for event in self.parser.receive(data):
            if type(event) is bytes:
                self.payloads.append(event)
                msg = self.session.receive(event)  # what a client sees, decoded by the real session
                if isinstance(msg, m.Snapshot):
                    self.to_send.append(frame(OP_BINARY, self.session.ack()))
                else:
                    self.messages.append(msg)
            elif isinstance(event, CloseFrame):
                self.close_code = event.code

    async def pump_until(self, done) -> None:
        while not done():
            if not await self.read_some():
                raise ConnectionError(f"closed {self.close_code}")
            for data in self.to_send:
                await self.send(data)
            self.to_send.clear()


async def test_a_hand_reaches_only_its_holder_and_messages_reach_their_targets() -> None:
    with trio.fail_after(DEADLINE_S):
        async with serve_game(Cards) as server:
            server.create_room("table")
            async with server.connect(room="table", name="ada") as ada:
                bob = await RecordingSocket.connect("127.0.0.1", server.node.ports[0])
                await bob.join("table", name="bob")
                assert bob.messages[0].messages["play"] == {"slot": ["int", 0, HAND - 1]}  # type: ignore[union-attr]
                bob_id = bob.session.player

                def both_seated() -> bool:
                    world = bob.session.world
                    return world is not None and {ada.player, bob_id} <= set(world.ids.tolist())

                await bob.pump_until(both_seated)
                while {ada.player, bob_id} - set((await ada.next_world()).ids.tolist()):
                    pass
                hands = [bytes(ada.entity(ada.player)["hand"])]  # type: ignore[index]
                assert all(hands[0]), "ada holds five cards"
                # Bob sees ada's seat and card count, not her cards; his own he sees.
                seen_by_bob = bob.session.world.entity(ada.player)  # type: ignore[union-attr]
                assert seen_by_bob["hand"] == [0] * HAND and seen_by_bob["count"] == HAND
                assert all(bob.session.world.entity(bob_id)["hand"])  # type: ignore[union-attr, index]
                assert ada.entity(bob_id)["hand"] == [0] * HAND  # type: ignore[index]

                # Ada plays her first card: she alone is told what she drew;
                # bob sees the public event and the pile's top card.
                played = hands[0][0]
                assert await ada.send_message("play", slot=0)
                drew = await ada.next_message()
                assert drew.kind == "drew" and drew.data["slot"] == 0
                await ada.next_world()
                hands.append(bytes(ada.entity(ada.player)["hand"]))  # type: ignore[index]
                assert hands[1][0] == drew.data["card"]

                def saw_the_play() -> bool:
                    pile = bob.session.world.entity(PILE_ID) if bob.session.world is not None else None
                    return pile is not None and pile["top"] == played

                await bob.pump_until(saw_the_play)
                assert not [msg for msg in bob.messages if isinstance(msg, RoomMessage) and msg.kind == "drew"]

                # Chat, from bob's raw socket to everyone.
                await bob.send(frame(OP_BINARY, bob.session.message("chat", text="gg")))
                chat = await ada.next_message()
                assert (chat.kind, chat.data) == ("chat", {"from": bob_id, "text": "gg"})
                await bob.pump_until(lambda: any(isinstance(msg, RoomMessage) for msg in bob.messages))

                # A bad message: INVALID_MESSAGE, and bob plays on.
                bad = msgpack.packb({"t": "msg", "kind": "play", "data": {"slot": 99}})
                await bob.send(frame(OP_BINARY, bad))
                await bob.pump_until(lambda: bob.errors())
                assert bob.errors() == [int(Code.INVALID_MESSAGE)]
                tick = bob.session.world.tick  # type: ignore[union-attr]
                await bob.pump_until(lambda: bob.session.world.tick > tick + 2)  # type: ignore[union-attr]
                assert bob.close_code is None

                # A burst over the game's message rate (10/s, 20 deep): the
                # extras are refused with 4006, the connection stays.
                burst = b"".join(frame(OP_BINARY, bob.session.message("chat", text=str(i))) for i in range(25))
                await bob.send(burst)
                await bob.pump_until(lambda: bob.errors().count(int(Code.RATE_LIMITED)) >= 4)
                tick = bob.session.world.tick  # type: ignore[union-attr]
                await bob.pump_until(lambda: bob.session.world.tick > tick + 2)  # type: ignore[union-attr]
                assert bob.close_code is None
                assert 4 <= bob.errors().count(int(Code.RATE_LIMITED)) <= 6  # 25 sent, ~20 in the bucket

                # Not one of ada's hands, at any time, in any byte bob received
                # (where his own hand is, which shows the search can find one).
                assert any(bytes(bob.session.world.entity(bob_id)["hand"]) in p for p in bob.payloads)  # type: ignore[union-attr, index]
                assert hands[0] != hands[1]
                for payload in bob.payloads:
                    for hand in hands:
                        assert hand not in payload
                # The node's metrics show the two views and the messages.
                async with httpx.AsyncClient(base_url=server.control_url) as http:
                    text = (await http.get("/metrics")).text
                samples = {
                    (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                    for family in text_string_to_metric_families(text)
                    for sample in family.samples
                }
                room = (("room", "table"),)
                assert samples[("tickroom_room_distinct_views", room)] == 2
                assert samples[("tickroom_distinct_views", ())] == 2
                assert samples[("tickroom_room_encodes_per_tick", room)] >= 2  # one per view at least
                received = samples[("tickroom_game_messages_received_total", ())]
                assert 2 + 19 <= received <= 2 + 21  # the play, the chat, the burst's admitted
                assert samples[("tickroom_game_messages_sent_total", ())] == 1 + 2 * (
                    received - 1
                )  # "drew", chats to both
                await bob.aclose()


async def test_after_a_dropped_connection_the_rejoin_replays_the_messages_each_kept_once() -> None:
    with trio.fail_after(DEADLINE_S):
        async with serve_game(Cards) as server:
            room = server.create_room("table")
            async with (
                server.connect(room="table", name="ada") as ada,
                server.connect(room="table", name="bob", reconnect=True) as bob,
            ):
                await bob.next_world()
                assert await ada.send_message("chat", text="one")
                assert (await bob.next_message()).data["text"] == "one"
                # The server drops bob's connection (4112, a code to resume
                # after); ada chats meanwhile. Bob's client rejoins by itself.
                player = room.players.by_id(bob.player)
                assert player is not None and player.link is not None
                player.link.kick(Code.ACK_TIMEOUT, "dropped by the test")
                assert await ada.send_message("chat", text="two")
                assert (await bob.next_message()).data["text"] == "two"
                while bob.reconnects == 0:  # back on a new connection (the replay came after its welcome)
                    await bob.next_world()
                assert await ada.send_message("chat", text="three")
                assert (await bob.next_message()).data["text"] == "three"
                # The replay after the rejoin repeated "one" (and maybe "two"): kept once each.
                assert bob.take_messages() == [] and bob.reconnects == 1
