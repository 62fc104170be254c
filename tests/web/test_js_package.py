"""The browser client as an npm package (packages/tickroom-client): its
TypeScript declarations type-check (tsc --noEmit), its node tests pass
against a real server, and `npm pack` makes a tarball that a page installs
and bundles (esbuild) without tickroom's server, and that bundle plays in
headless Chromium from a file:// page.

scripts/run-tests.sh runs `npm ci` in the package first (typescript and
esbuild come from its package-lock.json); a missing install fails here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.integration.harness import REPO, running_server

from .browser import chromium

pytestmark = pytest.mark.integration
PACKAGE = REPO / "packages" / "tickroom-client"
BIN = PACKAGE / "node_modules" / ".bin"
TIMEOUT_S = 120
PAGE_TIMEOUT_MS = 15_000

APP = """\
import { TickroomClient } from "@tickroom/client";
import { Prediction } from "@tickroom/client/predict";

const url = new URLSearchParams(location.search).get("ws");
const client = new TickroomClient({ url, room: "bundled", name: "page" });
const prediction = new Prediction();
window.result = { joined: false, snapshots: 0 };
client.onWelcome = () => { window.result.joined = true; };
client.onSnapshot = () => {
  window.result.snapshots++;
  const me = client.entity(client.player);
  if (me) prediction.reconcile(me.pos, client.serverSeq, me.hp, client.welcome.rate);
  window.result.predicted = prediction.pos;
};
client.connect();
setInterval(() => client.sendInput({ mx: 1, my: 0, aim: 0, fire: false }), 50);
"""


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if not os.path.isabs(args[0]):
        found = shutil.which(args[0])
        assert found, f"{args[0]} is missing: apt-get install nodejs npm (scripts/run-tests.sh does)"
        args = (found, *args[1:])
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )  # fmt: skip
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed() -> Path:
    for tool in ("tsc", "esbuild"):
        if not (BIN / tool).exists():
            pytest.fail(f"{BIN / tool} is missing: run `npm ci` in {PACKAGE} (scripts/run-tests.sh does)")
    return PACKAGE


def node_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    node = shutil.which("node")
    assert node, "node is missing: apt-get install nodejs (scripts/run-tests.sh does)"
    probe = [node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"]
    has_websocket = subprocess.run(probe, check=False).returncode == 0
    if not has_websocket:  # Node 20: behind a flag
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + " --experimental-websocket").strip()
    return env


def test_declarations_type_check(installed) -> None:
    run("npm", "run", "--silent", "typecheck", cwd=installed)


def test_node_tests_pass_against_a_real_server(installed) -> None:
    # The arena for the package's tests, and the test card game for its
    # messages and hidden components (test/messages.test.js).
    with running_server() as server, running_server("--game", "tests.games.cards:Cards") as cards:
        env = node_env(TICKROOM_URL=server.url, TICKROOM_CARDS_URL=cards.url)
        result = run("npm", "test", cwd=installed, env=env)
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout, result.stdout
    assert "a hand reaches only its holder" in result.stdout, result.stdout  # the cards test ran


def test_packed_tarball_bundles_into_a_page_that_plays(installed, tmp_path) -> None:
    packed = run("npm", "pack", "--silent", "--pack-destination", str(tmp_path), cwd=installed)
    tarball = tmp_path / packed.stdout.strip().splitlines()[-1]
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    expected = {f"package/dist/{m}.js" for m in ("tickroom", "wire", "predict", "arena")}
    expected |= {f"package/types/{m}.d.ts" for m in ("tickroom", "wire", "predict", "arena")}
    assert expected | {"package/package.json", "package/README.md"} <= names
    assert not any(n.startswith(("package/test/", "package/node_modules/")) for n in names), names

    # A game's page: its own project, the tarball installed, one bundle.
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "game-page", "private": True, "type": "module"}))
    run("npm", "install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", str(tarball), cwd=app)
    (app / "main.js").write_text(APP)
    run(
        str(BIN / "esbuild"),
        "main.js",
        "--bundle",
        "--format=iife",
        "--outfile=bundle.js",
        "--log-level=warning",
        cwd=app,
    )
    bundle = (app / "bundle.js").read_text()
    assert "vendor/msgpack" not in bundle and "/static/" not in bundle
    # A classic script: Chromium loads no module script from file://.
    (app / "index.html").write_text('<!doctype html><script src="bundle.js"></script>')
    shutil.rmtree(app / "node_modules")  # the page needs nothing but its bundle

    with running_server() as server, chromium() as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{(app / 'index.html').as_uri()}?ws={server.url}")
        page.wait_for_function(
            "() => window.result && window.result.joined && window.result.snapshots >= 10", timeout=PAGE_TIMEOUT_MS
        )
        page.wait_for_function("() => Array.isArray(window.result.predicted)", timeout=PAGE_TIMEOUT_MS)
        assert errors == []
