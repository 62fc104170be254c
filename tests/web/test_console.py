"""The operator console (/console) in headless Chromium against a real
server process with an API key: the key is typed into the page and never
appears in a URL; the page lists the rooms that clients created with their
players, each room's tick-time chart moves, and closing a room from the page
closes it for its clients (4102), while the other room plays on; kicking
a player closes that client (4108) and leaves the others; drain
turns the node to draining. Waits are Playwright polls under deadlines."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.integration.harness import running_server
from tickroom.protocol.errors import Code

from .bots import bots_playing
from .browser import chromium

pytestmark = pytest.mark.integration
API_KEY = "console-test-key-0123456789"
TIMEOUT_MS = 15_000
SEATS = [("console-a", "ada"), ("console-a", "bob"), ("console-b", "cy")]


def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_MS / 1000) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def console_state(page) -> dict:
    return page.evaluate("() => window.tickroomConsole.state()")


def test_console_lists_rooms_charts_ticks_and_closes_a_room() -> None:
    with running_server("--api-key", API_KEY) as server, chromium() as browser:
        with bots_playing(server.url, SEATS) as closed:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(f"{server.control_url}/console")

            # A wrong key is refused, and the page says so.
            page.fill("#api-key", "wrong-key")
            page.click("#connect")
            page.wait_for_function("() => window.tickroomConsole.state().status.includes('401')", timeout=TIMEOUT_MS)
            assert not console_state(page)["connected"]

            page.fill("#api-key", API_KEY)
            page.click("#connect")
            page.wait_for_function(
                """() => {
                    const rooms = window.tickroomConsole.state().rooms;
                    const players = Object.fromEntries(rooms.map(r => [r.id, r.players]));
                    return players['console-a'] === 2 && players['console-b'] === 1;
                }""",
                timeout=TIMEOUT_MS,
            )
            # The chart moves: new points arrive as the rooms tick.
            page.wait_for_function(
                "() => window.tickroomConsole.state().rooms.every(r => r.points >= 2)", timeout=TIMEOUT_MS
            )
            before = {r["id"]: [r["points"], r["tick"]] for r in console_state(page)["rooms"]}
            page.wait_for_function(
                """before => window.tickroomConsole.state().rooms.every(r =>
                    r.points > before[r.id][0] && r.tick > before[r.id][1])""",
                arg=before,
                timeout=TIMEOUT_MS,
            )
            assert console_state(page)["node"]["state"] == "ready"
            # The node list (GET /v1/nodes): this node alone, without Redis.
            (alone,) = console_state(page)["nodes"]
            assert alone["rooms"] == 2 and alone["players"] == len(SEATS) and not alone["draining"]

            # The room's details: its players by name.
            page.click("tr[data-room='console-a'] button.details")
            page.wait_for_function(
                "() => document.querySelectorAll('#detail-players li').length === 2", timeout=TIMEOUT_MS
            )
            names = page.locator("#detail-players li span").all_inner_texts()
            assert sorted(n.split(" ")[0] for n in names) == ["ada", "bob"]
            assert not page.locator("#detail-chart").is_hidden()

            # Kick bob from the page: his client is closed with 4108, ada stays.
            page.locator("#detail-players li", has_text="bob").locator("button.kick").click()
            wait_until(lambda: "bob" in closed, "bob to be kicked")
            assert closed["bob"] == Code.KICKED
            page.wait_for_function(
                "() => document.querySelectorAll('#detail-players li').length === 1", timeout=TIMEOUT_MS
            )
            assert page.locator("#detail-players li span").all_inner_texts()[0].startswith("ada")

            # Close console-a from the page: its clients are closed with 4102.
            page.click("tr[data-room='console-a'] button.close")
            page.wait_for_function(
                "() => !window.tickroomConsole.state().rooms.some(r => r.id === 'console-a')", timeout=TIMEOUT_MS
            )
            wait_until(lambda: "ada" in closed, "the bot left in console-a to be closed")
            assert closed["ada"] == Code.ROOM_CLOSED
            assert "cy" not in closed  # the other room plays on
            assert [r["id"] for r in console_state(page)["rooms"]] == ["console-b"]

            # Drain: the node takes no new rooms.
            page.click("#drain")
            page.wait_for_function("() => window.tickroomConsole.state().node.state === 'draining'", timeout=TIMEOUT_MS)
            page.wait_for_function(
                "() => window.tickroomConsole.state().nodes.every(n => n.draining)", timeout=TIMEOUT_MS
            )
            ready = httpx.get(f"{server.control_url}/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "draining"

            assert errors == []
            assert all(API_KEY not in url for url in requests), "the API key must never be in a URL"
            assert all(
                not url.startswith(("http://", "https://")) or url.startswith(server.control_url) for url in requests
            )


def test_console_page_is_public_and_refuses_framing() -> None:
    with running_server("--api-key", API_KEY) as server:
        answer = httpx.get(f"{server.control_url}/console")
        assert answer.status_code == 200
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY"
        # The data behind it is not public.
        assert httpx.get(f"{server.control_url}/v1/rooms").status_code == 401
        assert httpx.post(f"{server.control_url}/console").status_code == 405
