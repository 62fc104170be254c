"""check_game's rule for hidden components (tickroom.simulation.game,
``hidden_components``): every tick's Visibility gives a mask for each of
them that fits the view, and what each player's client rebuilds from the
room's real encoder holds the true value where that player may see the
component and zero bytes everywhere else.

Why the rebuilt world proves no hidden byte left: every value a snapshot
carries lands in the world the client rebuilds at that tick, so a rebuilt
row of zeros means the frame carried zeros (or nothing) for it.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from tickroom.protocol import envelope
from tickroom.protocol import messages as m
from tickroom.protocol.codec import finish_snapshot
from tickroom.protocol.delta import WorldState, apply_delta
from tickroom.server.rooms.snapshots import SnapshotHistory
from tickroom.server.rooms.views import split_views

PLAYERS = 6
HISTORY = 8


def check_hidden_components(c: Any, rng_seed: int = 15) -> str:
    """The rule; ``c`` is check_game's checker (its game class, schema,
    inputs and tick count). Raises AssertionError naming what is wrong."""
    hidden = tuple(getattr(c.game_cls, "hidden_components", ()))
    if not hidden:
        return "no hidden components"
    game, ids = c.new(PLAYERS)
    rng = np.random.default_rng(rng_seed)
    history = SnapshotHistory(c.schema, HISTORY)
    rebuilt: dict[int, dict[int, WorldState]] = {pid: {} for pid in ids}
    checked = hidden_cells = 0
    for _ in range(c.ticks):
        game.apply_inputs(c.batch(rng, ids))
        game.step()
        view = game.view()
        visibility = game.visibility(view)
        if visibility is None:
            raise AssertionError("visibility() answered None: with hidden components it must answer every tick")
        want = (np.asarray(visibility.players).shape[0], np.asarray(view.ids).shape[0])
        for name in hidden:
            mask = np.asarray(visibility.components.get(name)) if name in visibility.components else None
            if mask is None or mask.dtype != np.bool_ or mask.shape != want:
                found = "none" if mask is None else f"{mask.dtype} {mask.shape}"
                raise AssertionError(f"hidden component {name!r}: mask is {found}, the view needs bool {want}")
        world = WorldState.from_view(game.tick, view.ids, view.components, c.schema)
        history.record(world, [], split_views(world, visibility, view.ids, c.schema, hidden))
        rows = {int(p): i for i, p in enumerate(np.asarray(visibility.players).tolist())}
        columns = np.argsort(np.asarray(view.ids), kind="stable")
        for k, pid in enumerate(ids):
            # Half the players ack every tick, the others every third: deltas
            # against both kinds of baseline, and full snapshots at first.
            ack = max((t for t in rebuilt[pid] if t <= game.tick - 1 - 2 * (k % 2)), default=m.NO_TICK)
            base = history.baseline_for(ack)
            payload = finish_snapshot(history.payload_for(pid, base), 0)
            fields = envelope.decode(msgpack.unpackb(payload, raw=False))  # version 2's snapshot array
            got = apply_delta(rebuilt[pid].get(base), world.tick, fields, c.schema)
            rebuilt[pid][world.tick] = got
            for old in [t for t in rebuilt[pid] if t < world.tick - HISTORY]:
                del rebuilt[pid][old]
            row = rows.get(pid)
            sees = (
                np.zeros(world.ids.shape[0], dtype=bool) if row is None else np.asarray(visibility.mask)[row][columns]
            )
            if got.ids.tolist() != world.ids[sees].tolist():
                raise AssertionError(f"tick {world.tick}: player {pid} rebuilt other entities than its mask allows")
            for name in hidden:
                shown = np.zeros_like(sees) if row is None else np.asarray(visibility.components[name])[row][columns]
                truth = np.array(world.components[name][sees])
                hide = ~shown[sees]
                truth[hide] = 0
                hidden_cells += int(np.count_nonzero(hide))
                if not np.array_equal(got.components[name], truth):
                    raise AssertionError(
                        f"tick {world.tick}: player {pid} rebuilt component {name!r} with values it may not see, "
                        "or without those it may"
                    )
            checked += 1
    return (
        f"{checked} client frames at {PLAYERS} players: each rebuilt world holds exactly what its masks allow; "
        f"{hidden_cells} hidden cells read as zeros, none of their bytes sent"
    )
