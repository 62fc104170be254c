"""The operator console's page, served at /console on the control port.

The page itself is public and holds no data: the operator types the API key
into it, and its script (static/console.js) calls the control API with
``Authorization: Bearer``, keeping the key in memory only, never in a URL,
a cookie or storage. So this module serves one HTML file, with headers that
keep the page from being framed (clickjacking a "close room" button) and
from loading anything but its own modules; its script, CSS and the browser
client's modules come from /static/ (tickroom.server.control.demo_page).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tickroom.server.control.demo_page import STATIC_DIR

CONSOLE_PATH = "/console"
CONSOLE_PAGE = "console.html"
# Same-origin everything: the API it calls is this port.
_HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'none'",
    ),
]


def console_app(static_dir: Path | str = STATIC_DIR) -> Callable[[dict[str, Any], Any, Any], Awaitable[None]]:
    """The ASGI app answering GET/HEAD /console with the console page.

    The file is read once, here (no disk reads on the trio thread). Raises
    FileNotFoundError when static_dir has no console.html.
    """
    body = (Path(static_dir) / CONSOLE_PAGE).read_bytes()

    async def app(scope: dict[str, Any], receive, send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            headers = [(b"allow", b"GET, HEAD"), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})

    return app
