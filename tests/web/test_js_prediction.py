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
