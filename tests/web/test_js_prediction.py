"""The page predicts its own avatar with arena.js's stepPlayer: it must move
exactly as the server's arena does, one input per tick (walls included), or
every snapshot would pull the predicted avatar back."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tickroom.simulation.game import GameConfig, InputBatch
from tickroom.simulation.games.arena import Arena

SCRIPT = Path(__file__).resolve().parent / "step_player.mjs"


@pytest.mark.parametrize(("rate", "size"), [(20, 100.0), (30, 100.0), (20, 60.0)])
def test_step_player_matches_the_arena(tmp_path: Path, rate: int, size: float) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required for the browser client tests (apt-get install nodejs)")
    rng = np.random.default_rng(rate)
    game = Arena(seed=1, config=GameConfig(tick_rate=rate, options={"size": size}))
    pid = game.join("p")
    start = game.state()["p_pos"][0].tolist()
    # Long pushes in one direction reach the walls; diagonals test the clamp
    # of the stick to length 1.
    # Then a push into every wall: 400 ticks cross the arena at any rate here.
    inputs = [{"mx": mx, "my": my} for mx, my in [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)] for _ in range(400)]
    for _ in range(40):
        mx, my = rng.choice([-1.0, -0.5, 0.0, 0.7, 1.0], size=2)
        inputs += [{"mx": float(mx), "my": float(my)}] * int(rng.integers(1, 60))
    expected = []
    for inp in inputs:
        batch = InputBatch(
            players=np.array([pid]),
            fields={
                "mx": np.array([inp["mx"]]),
                "my": np.array([inp["my"]]),
                "aim": np.zeros(1),
                "fire": np.zeros(1, bool),
            },
        )
        game.apply_inputs(batch)
        game.step()
        expected.append(game.state()["p_pos"][0].tolist())
    (tmp_path / "in.json").write_text(
        json.dumps({"rate": rate, "size": size, "start": start, "hp": 100, "inputs": inputs})
    )
    subprocess.run([node, str(SCRIPT), str(tmp_path / "in.json"), str(tmp_path / "out.json")], check=True, timeout=30)
    got = json.loads((tmp_path / "out.json").read_text())
    assert np.allclose(got, expected, rtol=0, atol=1e-9)
    walls = np.asarray(expected)
    assert walls.min() == 1.0 and walls.max() == size - 1.0  # the walls (radius 1 inside 0..size) were reached


PLACE_SCRIPT = Path(__file__).resolve().parent / "place_projectiles.mjs"


@pytest.mark.parametrize(("rate", "size"), [(20, 100.0), (1, 1023.0), (60, 500.0)])
def test_projectile_at_gives_the_servers_positions_bit_for_bit(tmp_path: Path, rate: int, size: float) -> None:
    """Projectiles are sent once (protocol.md 7.3): the page flies them from
    their spawn data, and lands exactly where the server has them."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required for the browser client tests (apt-get install nodejs)")
    rng = np.random.default_rng(rate)
    game = Arena(seed=2, config=GameConfig(tick_rate=rate, max_players=6, options={"size": size}))
    ids = np.array([game.join(f"p{i}") for i in range(6)], dtype=np.int64)
    frames, expected = [], []
    for _ in range(80):
        n = ids.shape[0]
        game.apply_inputs(
            InputBatch(
                players=ids,
                fields={
                    "mx": rng.uniform(-1, 1, n),
                    "my": rng.uniform(-1, 1, n),
                    "aim": rng.uniform(-np.pi, np.pi, n),
                    "fire": rng.random(n) < 0.3,
                },
            )
        )
        game.step()
        view, state = game.view(), game.state()
        flying = view.components["kind"] == 1
        comps = {k: view.components[k][flying] for k in ("pos", "vel", "t0")}
        entities = [
            {"pos": (p / 32).tolist(), "vel": (v / 512).tolist(), "t0": int(t)}
            for p, v, t in zip(comps["pos"], comps["vel"], comps["t0"], strict=True)
        ]
        frames.append({"tick": game.tick, "entities": entities})
        expected.append(state["q_pos"].tolist())
    (tmp_path / "in.json").write_text(json.dumps(frames))
    subprocess.run(
        [node, str(PLACE_SCRIPT), str(tmp_path / "in.json"), str(tmp_path / "out.json")], check=True, timeout=30
    )
    got = json.loads((tmp_path / "out.json").read_text())
    assert got == expected  # exact, not close
    assert sum(len(f) for f in expected) > 50
