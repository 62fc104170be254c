"""The demo page in headless Chromium against a real server process.

Each test uses its own room; the server and the browser are shared by the
module. Waits are polls under deadlines (Playwright's wait_for_function),
never fixed sleeps standing in for a condition.
"""

from __future__ import annotations

import io
import threading

import msgpack
import pytest
import trio

from tickroom.client import connect

from .browser import chromium, open_play, state

pytestmark = pytest.mark.integration
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def browser():
    with chromium() as context:
        yield context


def entity(st: dict, entity_id: int) -> dict | None:
    return next((e for e in st["entities"] if e["id"] == entity_id), None)


def test_two_pages_see_each_other_move(server, browser) -> None:
    ada = open_play(browser, server.web_url, server.url, name="ada", room="e2e-two")
    bob = open_play(browser, server.web_url, server.url, name="bob", room="e2e-two")
    ada_id = state(ada)["player"]
    bob.wait_for_function(
        f"() => window.tickroom.debugState().entities.some(e => e.id === {ada_id})", timeout=TIMEOUT_MS
    )
    start = entity(state(bob), ada_id)["pos"]
    # Walk away from the nearer wall, so that the move cannot be clamped away.
    key, sign = ("a", -1) if start[0] > 50 else ("d", 1)
    ada.bring_to_front()
    ada.keyboard.down(key)
    try:
        bob.wait_for_function(
            f"""() => {{
                const e = window.tickroom.debugState().entities.find(e => e.id === {ada_id});
                return e && {sign} * (e.pos[0] - {start[0]}) > 5;
            }}""",
            timeout=TIMEOUT_MS,
        )
    finally:
        ada.keyboard.up(key)
    seen_by_bob = entity(state(bob), ada_id)
    assert seen_by_bob["pos"][1] == pytest.approx(start[1], abs=0.5)  # moved along x only
    assert state(bob)["names"][str(ada_id)] == "ada"
    # ada's own view agrees with the server's (prediction reconciled).
    me = state(ada)
    assert me["me"]["pos"][0] == pytest.approx(seen_by_bob["pos"][0], abs=3.0)
    assert not ada.page_errors and not bob.page_errors, (ada.page_errors, bob.page_errors)
    ada.close()
    bob.close()


def test_overlay_shows_rates_and_screenshot_is_not_blank(server, browser) -> None:
    from PIL import Image

    page = open_play(browser, server.web_url, server.url, name="cam", room="e2e-overlay")
    # The rate counts the snapshots of the last second: wait for a full one.
    page.wait_for_function("() => window.tickroom.debugState().snapshotRate >= 15", timeout=TIMEOUT_MS)
    page.wait_for_function("() => window.tickroom.debugState().rtt !== null", timeout=TIMEOUT_MS)
    st = state(page)
    assert st["rate"] == 20
    assert 15 <= st["snapshotRate"] <= 25, st["overlay"]
    assert st["bytesPerSecond"] > 0
    # Others are drawn about two snapshot intervals back (interpolation).
    assert 0.5 <= st["tick"] - st["renderTick"] <= 5.0, (st["tick"], st["renderTick"])
    overlay = page.inner_text("#overlay")
    for label in ("RTT", "snapshots", "KiB/s", "tick"):
        assert label in overlay, overlay
    page.check("#raw")  # the raw server state, for comparison
    page.wait_for_function("() => document.getElementById('overlay').textContent.includes('raw server state')")
    page.uncheck("#raw")
    image = Image.open(io.BytesIO(page.screenshot()))
    colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50, f"{len(colors or [])} colors: a blank page?"
    # The canvas itself is drawn on: the avatar's colour is in it.
    canvas = Image.open(io.BytesIO(page.locator("#canvas").screenshot())).convert("RGB")
    assert len(canvas.getcolors(maxcolors=1 << 20)) > 10
    page.close()


def test_page_and_python_bot_see_each_other(server, browser) -> None:
    room = "e2e-bot"
    seen: dict = {}
    bot_joined, stop = threading.Event(), threading.Event()

    async def bot() -> None:
        async with connect(server.url, room=room, name="pybot") as client:
            seen["bot_id"] = client.player
            bot_joined.set()
            with trio.move_on_after(20):
                while not stop.is_set():
                    await client.send_input(mx=0.0, my=0.0, aim=1.0, fire=False)
                    world = await client.next_world()
                    seen["bot_world_ids"] = world.ids.tolist()
                    joined = {e[3] for e in client.take_events() if e[1] == "join"}  # [tick, "join", id, name]
                    seen["bot_names"] = seen.get("bot_names", set()) | joined

    thread = threading.Thread(target=lambda: trio.run(bot), daemon=True)
    thread.start()
    assert bot_joined.wait(10), "the bot did not join"
    page = open_play(browser, server.web_url, server.url, name="webby", room=room)
    bot_id = seen["bot_id"]
    page.wait_for_function(
        f"() => window.tickroom.debugState().entities.some(e => e.id === {bot_id})", timeout=TIMEOUT_MS
    )
    st = state(page)
    assert st["names"][str(bot_id)] == "pybot"
    page_id = st["player"]
    for _ in range(200):  # at most 10 s
        if page_id in seen.get("bot_world_ids", []):
            break
        page.wait_for_timeout(50)
    stop.set()
    thread.join(10)
    assert page_id in seen["bot_world_ids"], seen
    assert "webby" in seen.get("bot_names", set()), seen
    page.close()


def test_page_rejoins_its_session_after_a_desync(server, browser) -> None:
    page = open_play(browser, server.web_url, server.url, name="phoenix", room="e2e-rejoin")
    before = state(page)
    # Forget every baseline: the next delta names one the page no longer
    # holds, a desync, so the page closes and rejoins with its session.
    page.evaluate("() => window.tickroom.client._history.clear()")
    page.wait_for_function("() => window.tickroom.debugState().desyncs >= 1", timeout=TIMEOUT_MS)
    page.wait_for_function(
        f"() => {{ const s = window.tickroom.debugState(); return s.state === 'joined' && s.tick > {before['tick']} + 5; }}",
        timeout=TIMEOUT_MS,
    )
    after = state(page)
    assert after["player"] == before["player"]  # the same avatar: a rejoin, not a new join
    assert after["nextSeq"] >= before["nextSeq"]  # input seqs carry on across the rejoin
    assert after["serverSeq"] > 0
    page.close()


class RedirectingNode:
    """A stand-in for a node that does not own the room: it answers every
    join with {"t": "redirect", "url": target} and waits for the close."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.joins: list[dict] = []
        self.port: int | None = None
        self._ready = threading.Event()
        self._token = None
        self._scope = None
        self._thread = threading.Thread(target=lambda: trio.run(self._main), daemon=True)

    def __enter__(self) -> RedirectingNode:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
        self._thread.join(10)

    async def _main(self) -> None:
        from trio_websocket import ConnectionClosed, serve_websocket

        async def handler(request) -> None:
            ws = await request.accept()
            try:
                self.joins.append(msgpack.unpackb(await ws.get_message()))
                await ws.send_message(msgpack.packb({"t": "redirect", "url": self.target}))
                await ws.get_message()
            except ConnectionClosed:
                pass

        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as self._scope:
            async with trio.open_nursery() as nursery:
                server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
                self.port = server.port
                self._ready.set()


def test_page_follows_a_redirect(server, browser) -> None:
    with RedirectingNode(server.url) as node:
        page = open_play(browser, server.web_url, f"ws://127.0.0.1:{node.port}", name="wanderer", room="e2e-redirect")
        st = state(page)
        assert st["url"] == server.url and st["state"] == "joined" and st["room"] == "e2e-redirect"
        assert node.joins and node.joins[0]["room"] == "e2e-redirect" and node.joins[0]["v"] == 2
        page.close()


def test_refused_join_is_surfaced(server, browser) -> None:
    page = browser.new_page()
    page.goto(f"{server.web_url}/play?ws={server.url}")
    page.fill("#name", "rebel")
    page.fill("#room", "no spaces allowed")
    # Bypass the form's own pattern check: the server's refusal is under test.
    page.evaluate("() => document.getElementById('join').dispatchEvent(new Event('submit', {cancelable: true}))")
    page.wait_for_function("() => window.tickroom.debugState().state === 'closed'", timeout=TIMEOUT_MS)
    st = state(page)
    assert st["closeInfo"]["code"] == 4001 and st["closeInfo"]["name"] == "INVALID_MESSAGE"
    assert st["lastError"]["code"] == 4001 and "room" in st["lastError"]["msg"]
    assert any("4001" in line for line in st["events"]), st["events"]
    page.close()


def test_play_draws_the_fog_and_gets_only_what_is_within_it(server, browser) -> None:
    import httpx

    fog = 15.0
    response = httpx.post(f"{server.control_url}/v1/rooms", json={"options": {"fog": fog}}, timeout=10)
    assert response.status_code == 201, response.text
    room = response.json()["room_id"]
    ada = open_play(browser, server.web_url, server.url, name="ada", room=room)
    bob = open_play(browser, server.web_url, server.url, name="bob", room=room)
    for page in (ada, bob):
        # The fog's clear circle is drawn around the page's own player ...
        page.wait_for_function("() => window.tickroom.debugState().fogCentre !== null", timeout=TIMEOUT_MS)
        st = state(page)
        assert st["fog"] == fog
        # ... and everything the page was sent is within the radius of it, or its own.
        me = st["me"]
        for e in st["entities"]:
            near = ((e["pos"][0] - me["pos"][0]) ** 2 + (e["pos"][1] - me["pos"][1]) ** 2) ** 0.5 <= fog + 0.1
            assert near or e["owner"] == st["player"], (e, me)
        assert st["lastError"] is None and not page.page_errors, page.page_errors
    for page in (ada, bob):
        page.close()
