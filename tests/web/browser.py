"""Headless Chromium for the browser tests: Debian's package, driven by
Playwright for Python. Never a downloaded browser (no `playwright install`):
the machine's network reaches only package registries."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM = os.environ.get("TICKROOM_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach
# Google's hosts, which this machine refuses; a fresh profile per run.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 960, "height": 800}


def require_chromium() -> None:
    """Fail (not skip): CI must run these, and scripts/run-tests.sh installs them."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/run-tests.sh does)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[test]'")


@contextmanager
def chromium() -> Iterator[object]:
    """A Playwright browser context on a fresh profile directory."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="tickroom-chromium-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=FLAGS, headless=True, viewport=VIEWPORT
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def open_play(context, web_url: str, ws_url: str, *, name: str, room: str, query: str = ""):
    """A new page on /play (``query``: more of its query string, e.g.
    "&game=tag"), joined to ``room`` as ``name`` through the form."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.page_errors = errors  # type: ignore[attr-defined]
    page.goto(f"{web_url}/play?ws={ws_url}{query}")
    page.fill("#name", name)
    page.fill("#room", room)
    page.click("#join-button")
    page.wait_for_function("() => window.tickroom.debugState().tick > 0", timeout=10_000)
    return page


def state(page) -> dict:
    return page.evaluate("() => window.tickroom.debugState()")
