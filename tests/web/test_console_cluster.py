"""The operator console across a cluster, in headless Chromium: two real
node processes share one real redis-server; the console served by node A
lists node B's rooms and players, kicks a player on B, closes B's room (its
clients get 4102), and drains B, all through A's control API
(/v1/nodes/{node}/..., tickroom.server.control.node_proxy). The page only
ever calls A's origin, and the key never appears in a URL. Waits are
Playwright polls under deadlines."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.harness import running_server
from tests.redis_server import redis_server_process
from tickroom.protocol.errors import Code

from .bots import bots_playing
from .browser import chromium
from .test_console import TIMEOUT_MS, console_state, wait_until

pytestmark = pytest.mark.integration
API_KEY = "console-cluster-key-0123456789"


def test_console_on_node_a_shows_and_acts_on_node_b_rooms() -> None:
    with redis_server_process() as redis_url:
        common = ("--api-key", API_KEY, "--redis-url", redis_url)
        with (
            running_server(*common, "--node-id", "node-a") as a,
            running_server(*common, "--node-id", "node-b") as b,
            chromium() as browser,
            # One after the other: dee's join creates the room on B.
            bots_playing(b.url, [("far-room", "dee")]) as closed,
            bots_playing(b.url, [("far-room", "eve")]) as closed_eve,
        ):
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(f"{a.control_url}/console")
            page.fill("#api-key", API_KEY)
            page.click("#connect")

            # B's room and its two players, on A's console.
            page.wait_for_function(
                """() => window.tickroomConsole.state().rooms.some(
                    r => r.id === 'far-room' && r.node === 'node-b' && r.players === 2)""",
                timeout=TIMEOUT_MS,
            )
            state = console_state(page)
            assert state["node"]["id"] == "node-a"
            assert sorted(n["id"] for n in state["nodes"]) == ["node-a", "node-b"]
            page.wait_for_function(
                "() => window.tickroomConsole.state().rooms.every(r => r.points >= 2)", timeout=TIMEOUT_MS
            )
            page.click("tr[data-room='far-room'][data-node='node-b'] button.details")
            page.wait_for_function(
                "() => document.querySelectorAll('#detail-players li').length === 2", timeout=TIMEOUT_MS
            )
            names = sorted(n.split(" ")[0] for n in page.locator("#detail-players li span").all_inner_texts())
            assert names == ["dee", "eve"]

            # Kick eve on B from A's page: her client gets 4108, dee stays.
            page.locator("#detail-players li", has_text="eve").locator("button.kick").click()
            wait_until(lambda: "eve" in closed_eve, "eve to be kicked")
            assert closed_eve["eve"] == Code.KICKED and "dee" not in closed
            page.wait_for_function(
                "() => document.querySelectorAll('#detail-players li').length === 1", timeout=TIMEOUT_MS
            )

            # Close B's room from A's page: dee's client gets 4102.
            page.click("tr[data-room='far-room'][data-node='node-b'] button.close")
            wait_until(lambda: "dee" in closed, "the room on node B to be closed")
            assert closed["dee"] == Code.ROOM_CLOSED
            page.wait_for_function(
                "() => !window.tickroomConsole.state().rooms.some(r => r.id === 'far-room')", timeout=TIMEOUT_MS
            )

            # Drain B from A's page: B drains, A does not.
            page.click("#nodes li[data-node='node-b'] button.drain-node")
            page.wait_for_function(
                "() => window.tickroomConsole.state().nodes.some(n => n.id === 'node-b' && n.draining)",
                timeout=TIMEOUT_MS,
            )
            assert httpx.get(f"{b.control_url}/readyz").json()["status"] == "draining"
            assert httpx.get(f"{a.control_url}/readyz").json()["status"] == "ready"

            assert errors == []
            assert all(API_KEY not in url for url in requests), "the API key must never be in a URL"
            # Every call went to A; B's control port was never called by the page.
            assert all(not url.startswith(("http://", "https://")) or url.startswith(a.control_url) for url in requests)
