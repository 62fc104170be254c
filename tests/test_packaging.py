"""The wheel, as a user gets it: built from the repository, installed into a
fresh virtual environment, and run from a directory whose own ``server.py``
and ``client.py`` would shadow generic top-level names.

One build and one install for the module (about a minute: pip resolves the
runtime dependencies from the machine's package index); the checks then
use that environment: the wheel's top level is ``tickroom`` alone, it ships
the demo page's static files, the public API imports, a plain install has
no load-tester extras (and says how to get them), and ``tickroom serve
--workers 2`` serves both workers against a real redis-server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import processes
from tests.processes import stop_supervisor

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
STATIC = REPO / "server" / "control" / "static"
BUILD_TIMEOUT_S = 300
DEADLINE_S = 30.0
# The repository copy the wheel is built from: without the local clutter
# (and the build/ and egg-info a build leaves behind stay out of the checkout).
_NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "node_modules", "build", "dist", "*.egg-info", "__pycache__")


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = DEADLINE_S) -> Any:
    return processes.wait_for(predicate, what, timeout, poll_s=0.2)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the repository."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(REPO, source, symlinks=True, ignore=_NOT_SOURCES)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source), "-w", str(tmp / "dist")],
        check=True, timeout=BUILD_TIMEOUT_S, capture_output=True,
    )  # fmt: skip
    (built,) = (tmp / "dist").glob("tickroom-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed (no extras); its bin/."""
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)],
        check=True, timeout=BUILD_TIMEOUT_S, capture_output=True,
    )  # fmt: skip
    return bin_dir


@pytest.fixture
def shadowing_dir(tmp_path: Path) -> Iterator[Path]:
    """A working directory with its own server.py and client.py, which fail
    loudly if anything imports them as modules."""
    for name in ("server", "client", "protocol", "simulation", "loadtest"):
        (tmp_path / f"{name}.py").write_text(f'raise SystemExit("the user\'s own {name}.py was imported")\n')
    yield tmp_path


def test_the_wheels_top_level_is_tickroom_alone(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        (top_level,) = [n for n in zf.namelist() if n.endswith(".dist-info/top_level.txt")]
        assert zf.read(top_level).decode().split() == ["tickroom"]
        assert {n.split("/")[0] for n in zf.namelist() if not n.split("/")[0].endswith(".dist-info")} == {"tickroom"}


def test_the_wheel_ships_the_demo_pages_static_files(wheel: Path) -> None:
    expected = {
        "tickroom/server/control/static/" + str(path.relative_to(STATIC))
        for path in STATIC.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert "tickroom/server/control/static/play.html" in expected
    assert any("/vendor/msgpack/" in name for name in expected)  # scripts/vendor-js.sh ran
    with zipfile.ZipFile(wheel) as zf:
        assert expected <= set(zf.namelist())


def test_the_public_api_imports_beside_a_users_own_modules(installed: Path, shadowing_dir: Path) -> None:
    done = subprocess.run(
        [str(installed / "python"), "-c", "from tickroom import connect, Game; print(connect.__module__, Game.__name__)"],
        cwd=shadowing_dir, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["tickroom.client.connecting", "Game"]


def test_a_plain_install_has_no_load_tester_extras_and_says_how_to_get_them(
    installed: Path, shadowing_dir: Path
) -> None:
    for module in ("matplotlib", "rich"):
        probe = subprocess.run([str(installed / "python"), "-c", f"import {module}"], capture_output=True, timeout=60)
        assert probe.returncode != 0, f"{module} is installed without the loadtest extra"
    done = subprocess.run(
        [str(installed / "tickroom"), "loadtest", "--plot", "x.png", "--duration", "1"],
        cwd=shadowing_dir, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "pip install 'tickroom[loadtest]'" in done.stderr
    assert not (shadowing_dir / "x.png").exists()


def test_two_workers_serve_from_the_installed_command(installed: Path, shadowing_dir: Path, redis_url: str) -> None:
    log_path = shadowing_dir / "serve.log"
    with log_path.open("wb") as log_file:
        parent = subprocess.Popen(
            [
                str(installed / "tickroom"), "serve", "--host", "127.0.0.1", "--port", "0", "--control-port", "0",
                "--workers", "2", "--redis-url", redis_url, "--node-id", "pkg",
            ],
            cwd=shadowing_dir, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def nodes() -> dict[str, dict[str, Any]]:
        out = subprocess.run(
            [str(installed / "tickroom"), "status", "--json", "--redis-url", redis_url],
            cwd=shadowing_dir, capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return {n["node_id"]: n for n in json.loads(out.stdout)["nodes"]}

    def both_healthy() -> bool:
        found = nodes()
        if found.keys() != {"pkg-w0", "pkg-w1"} or not all(n["control_url"] for n in found.values()):
            return False
        return all(httpx.get(n["control_url"].rstrip("/") + "/healthz").status_code == 200 for n in found.values())

    try:
        wait_for(both_healthy, "both installed workers to register and answer /healthz")
        parent.terminate()
        assert parent.wait(timeout=DEADLINE_S) == 0, log_path.read_text(errors="replace")
        assert "was imported" not in log_path.read_text(errors="replace")
    finally:
        stop_supervisor(parent)
