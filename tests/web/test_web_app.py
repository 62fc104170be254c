"""server/control/demo_page.py: the ASGI app that serves /play and /static/, called
directly as an ASGI server would (no sockets), and the vendored msgpack."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from tickroom.server.control.demo_page import STATIC_DIR, handles, safe_relative, web_app

REPO = Path(__file__).resolve().parents[2]


async def request(app, path: str, method: str = "GET", headers: list | None = None) -> tuple[int, dict, bytes]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": headers or []}
    await app(scope, receive, send)
    start, body = sent
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body["body"]


async def test_play_page_and_modules_with_content_types() -> None:
    app = web_app()
    status, headers, body = await request(app, "/play")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'src="/static/play.js"' in body
    for path, ctype in [
        ("/static/play.js", "text/javascript"),
        ("/static/tickroom.js", "text/javascript"),
        ("/static/vendor/msgpack/index.mjs", "text/javascript"),
        ("/static/vendor/msgpack/utils/int.mjs", "text/javascript"),
        ("/static/play.css", "text/css"),
    ]:
        status, headers, body = await request(app, path)
        assert status == 200, path
        assert headers["content-type"].startswith(ctype), (path, headers)
        assert int(headers["content-length"]) == len(body) > 0
        assert headers["cache-control"] == "no-cache" and headers["etag"]
        assert headers["x-content-type-options"] == "nosniff"


async def test_revalidation_head_and_methods() -> None:
    app = web_app()
    _, headers, body = await request(app, "/static/wire.js")
    status, _, again = await request(app, "/static/wire.js", headers=[(b"if-none-match", headers["etag"].encode())])
    assert status == 304 and again == b""
    status, head_headers, head_body = await request(app, "/static/wire.js", method="HEAD")
    assert status == 200 and head_body == b"" and int(head_headers["content-length"]) == len(body)
    status, headers, _ = await request(app, "/play", method="POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../web.py",
        "/static/../../pyproject.toml",
        "/static/vendor/../../web.py",
        "/static//etc/passwd",
        "/static/./play.js",
        "/static/..\\web.py",
        "/static/.hidden",
        "/static/",
        "/static/nope.js",
        "/",
        "/play/../static/play.js",
        "/playground",
    ],
)
async def test_outside_paths_are_refused(path: str) -> None:
    status, _, body = await request(web_app(), path)
    assert status == 404 and b"web.py" not in body


def test_path_rules() -> None:
    assert safe_relative("vendor/msgpack/index.mjs") == "vendor/msgpack/index.mjs"
    for bad in ["", "..", "a/../b", "a//b", ".git/config", "a\\b", "a\x00b", "/abs"]:
        assert safe_relative(bad) is None, bad
    assert handles("/play") and handles("/static/play.js")
    assert not handles("/healthz") and not handles("/playx")


def test_missing_page_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        web_app(tmp_path)


def test_vendored_msgpack_is_the_locked_package() -> None:
    """The committed copy is exactly what scripts/vendor-js.sh makes from
    package-lock.json: no hand edits, no drift after a version bump."""
    source = REPO / "node_modules" / "@msgpack" / "msgpack" / "dist.esm"
    if not source.is_dir():
        pytest.fail("node_modules is missing: run scripts/vendor-js.sh (scripts/run-tests.sh does)")
    vendored = STATIC_DIR / "vendor" / "msgpack"
    modules = sorted(p.relative_to(source) for p in source.rglob("*.mjs"))
    assert modules, source
    assert sorted(p.relative_to(vendored) for p in vendored.rglob("*.mjs")) == modules
    for rel in modules:
        assert filecmp.cmp(source / rel, vendored / rel, shallow=False), rel


async def test_static_files_may_be_imported_from_another_origin_and_play_is_not_shared() -> None:
    app = web_app()
    for path in ("/static/tickroom.js", "/static/wire.js", "/static/vendor/msgpack/index.mjs"):
        status, headers, _ = await request(app, path)
        assert status == 200 and headers["access-control-allow-origin"] == "*", path
    _, headers, _ = await request(app, "/static/wire.js")
    status, again, _ = await request(app, "/static/wire.js", headers=[(b"if-none-match", headers["etag"].encode())])
    assert status == 304 and again["access-control-allow-origin"] == "*"
    _, headers, _ = await request(app, "/play")
    assert "access-control-allow-origin" not in headers
