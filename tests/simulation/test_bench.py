"""``python -m tickroom.simulation.bench`` times any game.

The bench runs for a handful of ticks here: these tests hold its report's
structure, its game resolution and its inputs, never its figures (those
go in docs/benchmarks.md). The example game tag is installed in the test
venv as its own package with its entry point (scripts/run-tests.sh), so
``--game tag`` resolves exactly as a user's game would.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest

from tickroom.simulation.bench import PHASES, bench_game, main
from tickroom.simulation.game_loader import GameLoadError, resolve_game
from tickroom.simulation.games.arena import Arena
from tickroom.simulation.random_batches import RandomBatches

SHORT = ["--ticks", "5", "--warmup", "2", "--runs", "2"]


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickroom.simulation.bench", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def check_report(report: dict, *, game: str, players: int) -> None:
    assert report["game"] == game
    assert report["players"] == players
    assert report["ticks"] == 5 and report["runs"] == 2
    assert list(report["phases"]) == list(PHASES)
    for stats in report["phases"].values():
        assert set(stats) == {"median_us", "p99_us"}
        assert all(math.isfinite(v) and v >= 0 for v in stats.values())
    assert report["state_kib"] > 0


def check_table(stdout: str) -> None:
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["phase"])
    rows = [line.split() for line in lines[header + 1 : header + 1 + len(PHASES)]]
    assert [row[0] for row in rows] == list(PHASES)
    assert all(len(row) == 3 for row in rows)  # name, median, p99


def test_arena_by_name(tmp_path: Path) -> None:
    out = tmp_path / "arena.json"
    done = run_bench("--game", "arena", "--players", "4", *SHORT, "--json", str(out))
    assert done.returncode == 0, done.stderr
    check_table(done.stdout)
    report = json.loads(out.read_text())
    check_report(report, game="arena", players=4)
    assert report["entities"] >= 4  # every avatar, plus any projectile in flight
    assert report["options"] == {name: option.default for name, option in Arena.options.items()}


def test_tag_through_its_entry_point_with_options() -> None:
    done = run_bench("--game", "tag", "--players", "6", "--options", '{"size": 80}', *SHORT, "--json", "-")
    assert done.returncode == 0, done.stderr
    check_table(done.stdout)
    report = json.loads(done.stdout[done.stdout.index("\n{\n") :])  # after the table
    check_report(report, game="tag", players=6)
    assert report["entities"] == 6  # tag's entities are its players
    assert report["options"] == {"size": 80.0, "speed": 10.0, "cooldown": 1.0}  # the rest at their defaults


def test_unknown_game_exits_2_naming_the_known_ones() -> None:
    done = run_bench("--game", "no_such_game", *SHORT)
    assert done.returncode == 2
    assert "unknown game 'no_such_game'" in done.stderr
    assert "arena" in done.stderr and "tag" in done.stderr


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--game", "tag", "--options", '{"size": 1}'], "'size'"),
        (["--game", "tag", "--options", '{"colour": 1}'], "unknown option 'colour'"),
        (["--game", "tag", "--options", "[1]"], "JSON object"),
        (["--game", "tag", "--players", "0"], "--players"),
        (["--game", "tag", "--arena-extras"], "--arena-extras needs --game arena"),
        (["--game", "tickroom.simulation.game:GameConfig"], "lacks join"),
        (["--game", "no.such.module:Game"], "cannot load game"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*argv, *SHORT])
    assert exited.value.code == 2
    assert says in capsys.readouterr().err


def test_a_game_by_module_reference_in_process() -> None:
    tag = resolve_game("tag_game.tag:Tag")
    assert tag is resolve_game("tag")  # the entry point names the same class
    report = bench_game(tag, players=3, ticks=4, runs=1, warmup=0)
    assert report.game == "tag" and report.entities == 3
    assert list(report.phases) == list(PHASES)
    assert "apply_inputs" in report.table() and "tick (sum)" in report.table()


def test_resolution_order_and_errors() -> None:
    assert resolve_game("arena") is Arena
    fake_points = [EntryPoint("tag", "tag_game.tag:Tag", "tickroom.games"), EntryPoint("x", "a:B", "tickroom.games")]
    assert resolve_game("tag", found=lambda: fake_points).name == "tag"
    with pytest.raises(GameLoadError, match="known games: arena, tag, x"):
        resolve_game("nope", found=lambda: fake_points)
    with pytest.raises(GameLoadError, match="is not module.path:Class"):
        resolve_game(":Tag")
    with pytest.raises(GameLoadError, match="is not a class"):
        resolve_game("tickroom.simulation.game:DEFAULT_TICK_RATE")


def test_arena_extras_print_every_workload(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--game", "arena", "--players", "2", "--ticks", "5", "--warmup", "0", "--runs", "1", "--arena-extras"])
    out = capsys.readouterr().out
    for label in ("(a) ", "(a') ", "(b) ", "(b') ", "(c) "):
        assert any(line.startswith(label) for line in out.splitlines()), label


def test_random_batches_are_valid_for_every_kind_of_field() -> None:
    fields = {
        "stick": ("float", -1.0, 1.0),
        "power": ("float", 0.0, math.inf),
        "slot": ("int", 0.5, 3.5),  # only 1, 2, 3 are integers in range
        "jump": ("bool",),
    }
    batches = RandomBatches(fields, np.array([9, 3, 5]), np.random.default_rng(0))
    for _ in range(200):
        batch = batches.next()
        assert batch.players.tolist() == [3, 5, 9]  # one row each, ascending: the InputBatch contract
        assert batch.fields["stick"].dtype == np.float64 and np.all(np.abs(batch.fields["stick"]) <= 1)
        assert np.all(np.isfinite(batch.fields["power"])) and np.all(batch.fields["power"] >= 0)
        assert batch.fields["slot"].dtype == np.int64 and set(batch.fields["slot"].tolist()) <= {1, 2, 3}
        assert batch.fields["jump"].dtype == np.bool_


def test_random_batches_are_reproducible_and_refuse_impossible_fields() -> None:
    def draw(seed: int) -> np.ndarray:
        batches = RandomBatches({"mx": ("float", -1, 1)}, np.arange(4), np.random.default_rng(seed))
        return np.stack([batches.next().fields["mx"] for _ in range(5)])

    assert np.array_equal(draw(1), draw(1)) and not np.array_equal(draw(1), draw(2))
    for bad in ({"k": ("int", 0.2, 0.8)}, {"k": ("float", 2, 1)}, {"k": ("vector",)}, {"k": "bool"}):
        with pytest.raises(ValueError, match="input field 'k'"):
            RandomBatches(bad, np.arange(2), np.random.default_rng(0))
