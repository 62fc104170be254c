"""The demo page and the browser client's files, as a small ASGI app.

``web_app(static_dir)`` serves:

    GET /play            play.html (the demo page)
    GET /static/<path>   a file under static_dir (the page's modules, CSS,
                         the vendored msgpack)

Everything else is 404; methods other than GET and HEAD are 405. The app is
framework-free so that the control API can mount it: hand it the requests
whose path is /play or starts with /static/ (see ``handles``).

The files are read once, when the app is built: the page is a few hundred
KiB, requests then never touch the disk (no blocking reads on the trio
thread), and a path can only name a file that was in the folder, so no
request can reach outside it. Paths are still checked and refused with 404
when they hold ``..``, empty or hidden segments, or backslashes, so that
a future change to lazy reads keeps the guarantee.

CORS: every /static/ response carries ``Access-Control-Allow-Origin: *``,
so a game's own page on another origin can ``import`` the browser client's
modules (tickroom.js, wire.js) from a node: they are public files, served
without cookies or credentials, so any origin may read them. /play itself
is not shared.

Caching: the module files are not content-hashed, so every response carries
an ETag and ``Cache-Control: no-cache`` (the browser revalidates and gets a
304 when nothing changed) instead of a max-age that would keep a stale
client after a deploy.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATIC_DIR = Path(__file__).resolve().parent / "static"
PLAY_PATH = "/play"
STATIC_PREFIX = "/static/"
PAGE = "play.html"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}
_COMMON_HEADERS = [
    (b"cache-control", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
]

# On /static/ responses: public modules any origin may import (module
# scripts are fetched in CORS mode, so without it a cross-origin import fails).
_CORS_HEADERS = [(b"access-control-allow-origin", b"*")]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


@dataclass(frozen=True)
class _File:
    body: bytes
    content_type: bytes
    etag: bytes


def _content_type(path: Path) -> str:
    return _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _load(static_dir: Path) -> dict[str, _File]:
    """Every regular file under static_dir, by its relative POSIX path."""
    files = {}
    for path in sorted(static_dir.rglob("*")):
        rel = path.relative_to(static_dir).as_posix()
        if not path.is_file() or any(part.startswith(".") for part in rel.split("/")):
            continue
        body = path.read_bytes()
        etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
        files[rel] = _File(body, _content_type(path).encode(), etag)
    return files


def safe_relative(path: str) -> str | None:
    """The file a /static/ path names, or None when it tries to leave the folder."""
    if not path or "\\" in path or "\x00" in path:
        return None
    parts = path.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    return path


def handles(path: str) -> bool:
    """Whether a request path belongs to this app (for mounting it)."""
    return path == PLAY_PATH or path.startswith(STATIC_PREFIX)


def web_app(static_dir: Path | str = STATIC_DIR) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI app serving /play and /static/ from ``static_dir``.

    Raises FileNotFoundError when static_dir has no play.html.
    """
    files = _load(Path(static_dir))
    if PAGE not in files:
        raise FileNotFoundError(f"{Path(static_dir) / PAGE} is missing")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets are the game port's business
        method, path = scope["method"], scope["path"]
        if path == PLAY_PATH:
            found: _File | None = files[PAGE]
        elif path.startswith(STATIC_PREFIX):
            rel = safe_relative(path[len(STATIC_PREFIX) :])
            found = files.get(rel) if rel is not None else None
        else:
            found = None
        if found is None:
            await _respond(send, 404, b"text/plain; charset=utf-8", b"not found\n")
            return
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"text/plain; charset=utf-8", b"method not allowed\n", [(b"allow", b"GET, HEAD")])
            return
        headers = dict(scope.get("headers") or [])
        extra = [(b"etag", found.etag)] + (_CORS_HEADERS if path != PLAY_PATH else [])
        if headers.get(b"if-none-match") == found.etag:
            await _respond(send, 304, None, b"", extra)
            return
        body = found.body if method == "GET" else b""
        await _respond(send, 200, found.content_type, body, extra, length=len(found.body))

    return app


async def _respond(
    send: Send,
    status: int,
    content_type: bytes | None,
    body: bytes,
    extra: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
    *,
    length: int | None = None,
) -> None:
    headers = list(_COMMON_HEADERS) + list(extra)
    if content_type is not None:
        headers.append((b"content-type", content_type))
    if status != 304:
        headers.append((b"content-length", str(len(body) if length is None else length).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def answer_lifespan(receive: Receive, send: Send) -> None:
    """Nothing to set up or tear down; answer so that servers do not warn."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
