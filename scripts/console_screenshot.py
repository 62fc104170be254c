"""Take docs/console.png: the operator console in headless Chromium, with
live rooms (two allocated with labels through the control API, one created
by its clients) and Python bots playing in them.

    python scripts/console_screenshot.py [OUT.png]

Uses the browser tests' setup (Debian's /usr/bin/chromium via Playwright)
and a real server process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.harness import running_server
from tests.web.bots import bots_playing
from tests.web.browser import chromium

API_KEY = "console-screenshot-key"
CHART_POINTS = 40  # seconds of chart before the picture


def main(out: Path) -> None:
    with running_server("--api-key", API_KEY) as server, chromium() as browser:
        auth = {"Authorization": f"Bearer {API_KEY}"}
        duel = httpx.post(
            f"{server.control_url}/v1/rooms",
            headers=auth,
            json={"max_players": 2, "labels": {"mode": "duel", "region": "eu"}},
        ).json()
        ffa = httpx.post(
            f"{server.control_url}/v1/rooms", headers=auth, json={"labels": {"mode": "ffa", "region": "eu"}}
        ).json()
        seats = [
            (duel["room_id"], "ada"),
            (duel["room_id"], "bob"),
            *[(ffa["room_id"], f"bot-{i}") for i in range(5)],
            ("lobby", "cy"),
            ("lobby", "dee"),
        ]
        with bots_playing(server.url, seats):
            page = browser.new_page()
            page.set_viewport_size({"width": 1100, "height": 760})
            page.goto(f"{server.control_url}/console")
            page.fill("#api-key", API_KEY)
            page.click("#connect")
            page.wait_for_function(
                f"() => window.tickroomConsole.state().rooms.length === 3 && window.tickroomConsole.state().rooms.every(r => r.points >= {CHART_POINTS})",
                timeout=(CHART_POINTS + 30) * 1000,
            )
            page.click(f"tr[data-room='{ffa['room_id']}'] button.details")
            page.wait_for_function("() => document.querySelectorAll('#detail-players li').length === 5", timeout=10_000)
            page.screenshot(path=str(out), full_page=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "console.png")
