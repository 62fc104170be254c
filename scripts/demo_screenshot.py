"""Take docs/play.png: the demo page in headless Chromium, in a room with a
second page and a few Python bots moving and shooting.

    python scripts/demo_screenshot.py [OUT.png]

Uses the browser tests' setup (Debian's /usr/bin/chromium via Playwright)
and a real server process.
"""

from __future__ import annotations

import math
import sys
import threading
from pathlib import Path

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.harness import running_server
from tests.web.browser import chromium, open_play
from tickroom.client import connect

ROOM = "lobby"
BOTS = ["bot-kai", "bot-zoe", "bot-max"]


async def bots(url: str, stop: threading.Event) -> None:
    async def one(i: int, name: str) -> None:
        async with connect(url, room=ROOM, name=name) as client:
            t = 0
            while not stop.is_set():
                t += 1
                angle = t / 25 + i * 2.1
                await client.send_input(
                    mx=math.cos(angle), my=math.sin(angle), aim=math.remainder(angle * 3, 2 * math.pi), fire=t % 9 < 2
                )
                await client.next_world()

    async with trio.open_nursery() as nursery:
        for i, name in enumerate(BOTS):
            nursery.start_soon(one, i, name)


def main(out: Path) -> None:
    with running_server() as server, chromium() as browser:
        stop = threading.Event()
        thread = threading.Thread(target=lambda: trio.run(bots, server.url, stop), daemon=True)
        thread.start()
        other = open_play(browser, server.web_url, server.url, name="bob", room=ROOM)
        page = open_play(browser, server.web_url, server.url, name="ada", room=ROOM)
        page.bring_to_front()
        page.mouse.move(420, 300)
        page.keyboard.down("d")
        page.mouse.down()
        page.wait_for_timeout(900)
        page.mouse.up()
        page.keyboard.up("d")
        page.wait_for_timeout(2500)
        page.screenshot(path=str(out))
        other.close()
        stop.set()
        thread.join(5)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "play.png")
