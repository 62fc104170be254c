"""/play for any game, in headless Chromium against a real server running the
example game tag (`--game tag`): the page takes the game from the welcome
and draws it from its schema (positions as circles, the other components in
the side panel), the keyboard drives tag's inputs, and ``?game=`` creates a
room of another game (arena, with its own view) on the same server.

Waits are polls under deadlines (Playwright's wait_for_function)."""

from __future__ import annotations

import io

import pytest

from tests.integration.harness import running_server

from .browser import chromium, open_play, state

pytestmark = pytest.mark.integration
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def tag_server():
    with running_server("--game", "tag") as proc:
        assert proc.web_url, proc.log()
        yield proc


@pytest.fixture(scope="module")
def browser():
    with chromium() as context:
        yield context


def entity(st: dict, entity_id: int) -> dict | None:
    return next((e for e in st["entities"] if e["id"] == entity_id), None)


def test_play_draws_tag_from_its_schema_and_the_keyboard_drives_it(tag_server, browser) -> None:
    from PIL import Image

    ada = open_play(browser, tag_server.web_url, tag_server.url, name="ada", room="web-tag")
    bob = open_play(browser, tag_server.web_url, tag_server.url, name="bob", room="web-tag")
    st = state(ada)
    assert st["game"] == "tag" and st["view"] == "schema"
    ada_id = st["player"]
    bob.wait_for_function(
        f"() => window.tickroom.debugState().entities.some(e => e.id === {ada_id})", timeout=TIMEOUT_MS
    )
    # The side panel: every component but the position, a row per entity.
    bob.wait_for_function("() => window.tickroom.debugState().panel.length === 3", timeout=TIMEOUT_MS)
    panel = state(bob)["panel"]
    assert panel[0] == ["entity", "it", "score"]
    assert sorted(row[0] for row in panel[1:]) == ["ada", "bob"]
    assert sorted(row[1] for row in panel[1:]) == ["0", "1"]  # exactly one is "it"
    assert bob.text_content("#game-name") == "tag"
    # ada walks away from the nearer wall (tag's field is 50 units): bob sees it.
    start = entity(state(bob), ada_id)["pos"]
    key, sign = ("a", -1) if start[0] > 25 else ("d", 1)
    ada.bring_to_front()
    ada.keyboard.down(key)
    try:
        bob.wait_for_function(
            f"""() => {{
                const e = window.tickroom.debugState().entities.find(e => e.id === {ada_id});
                return e && {sign} * (e.pos[0] - {start[0]}) > 3;
            }}""",
            timeout=TIMEOUT_MS,
        )
    finally:
        ada.keyboard.up(key)
    # The canvas shows the players: pixels in both players' colours, not just the background.
    image = Image.open(io.BytesIO(bob.locator("#canvas").screenshot())).convert("RGB")
    assert len(image.getcolors(maxcolors=1 << 16) or []) > 10
    for page in (ada, bob):
        assert state(page)["lastError"] is None and not page.page_errors, page.page_errors
        page.close()


def test_the_game_query_parameter_creates_a_room_of_that_game(tag_server, browser) -> None:
    page = open_play(browser, tag_server.web_url, tag_server.url, name="cy", room="web-arena", query="&game=arena")
    st = state(page)
    assert st["game"] == "arena" and st["view"] == "arena"
    assert state(page)["panel"][0] == ["name", "hp", "kills"]
    assert page.text_content("#game-name") == "arena"
    assert not page.page_errors, page.page_errors
    page.close()


def test_a_page_on_another_origin_imports_the_browser_client(tag_server, browser) -> None:
    # localhost and 127.0.0.1 are two origins: the page lives on one, the
    # modules come from the other (module imports are CORS requests).
    other_origin = tag_server.web_url.replace("127.0.0.1", "localhost")
    assert other_origin != tag_server.web_url
    page = browser.new_page()
    page.goto(f"{other_origin}/play")
    kinds = page.evaluate(
        """async (base) => {
            const client = await import(`${base}/static/tickroom.js`);
            const wire = await import(`${base}/static/wire.js`);
            return [typeof client.TickroomClient, Object.keys(wire).length > 0];
        }""",
        tag_server.web_url,
    )
    assert kinds == ["function", True]
    page.close()
