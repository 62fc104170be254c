"""The Game interface: what the server knows of any one game.

The server owns the clock, the sockets and the players' connections; a game
owns its world. The server calls, on the room's task only:

    game = GameClass(seed=..., config=GameConfig(...))
    pid = game.join(name)            # a new player's avatar entity id
    game.leave(pid)
    game.apply_inputs(batch)         # the tick's inputs, already validated
    events = game.step()             # one fixed step of config.dt seconds
    view = game.view()               # what clients see, as named arrays
    state = game.state()             # the whole truth, for checkpoints
    game = GameClass.restore(state, config)  # ... and back

Shaped like nakama's RuntimeMatchCore (MatchInit / MatchJoin / MatchLoop /
MatchLeave), but mutating in place: the world is a handful of numpy arrays and
copying them every tick would cost more than the step itself.

Rules a game keeps (the tests hold every game to them):
- Pure: no clock, no I/O, no trio, no protocol. Time is counted in ticks.
- Deterministic: the same seed, config, joins, leaves and inputs in the same
  order give bit-identical state(); randomness comes only from the
  numpy.random.Generator stored in the state.
- Vectorised: step() and apply_inputs() do no per-entity Python loops.
- state() is the whole truth: restore(state()) continues exactly as the
  original would have.
- view() returns fresh arrays: the room keeps each view as a delta baseline,
  so a view that hands out a live array (mutated by the next step) makes
  every delta come out empty, with no error.

Optional declarations (a game without them keeps the defaults):
- ``options``: the room options a matchmaker may set (POST /v1/rooms
  ``options``), one tickroom.simulation.options.Option per name; the room's
  GameConfig.options then holds every one of them, defaults filled in, and
  the welcome and the room's checkpoints carry them. A classmethod
  ``check_options(options)`` may refuse combinations (ValueError).
- join() may raise JoinRejected(reason) to refuse a player (close 4106).
- ``visibility(view) -> Visibility | None``: what each player sees of this
  tick's ``view`` (the View just returned by view(), same tick), as one
  players x entities boolean mask computed for the whole room at once
  (vectorised, like step()). Each player then receives only the entities of
  its row; players with the same row share one encode. None means "every
  player sees the whole view" this tick (the shared path, at no extra
  cost); a game without the method never pays for visibility. A connected
  player without a row sees nothing. An exception or a malformed mask is a
  bug of the game: the room crashes (4103), as for view().
- ``hidden_components``: a tuple of component names only some players may
  see (a hand of cards, a team's resources). The game must then define
  ``visibility`` and return, every tick, a Visibility whose ``components``
  holds a mask for each of them (players x entities, like ``mask``); a
  player reads a hidden component it may not see as zero bytes, and its
  real bytes never leave in that player's messages. Returning None, or
  leaving a hidden component out, is a bug (4103): it would show it to all.
- ``message_types`` (with ``handle_messages(messages)``, and optionally
  ``message_rate`` per second): the typed messages its players may send
  (chat, "buy item"), validated and rate-limited before the room sees
  them, handed to ``handle_messages`` each tick before step()
  (tickroom.simulation.player_messages); the game answers with
  ``requests.send(kind, data, to)``. An exception from handle_messages is a
  bug of the game: the room crashes (4103), as for apply_inputs().

Lag compensation (optional): a game that judges an input against the world
as its player saw it (a shot at where the target was on the shooter's
screen) declares ``history_ticks``, an int attribute (0: none; it may
depend on the config and options, it is read once after construction or
restore), and ``remember() -> Mapping[str, numpy.ndarray]``, the fresh
arrays of the present tick it wants to look back at (e.g. players' ids and
positions; state() is the truth, this is a cheap subset). The room then
calls remember() after every step and keeps the newest ``history_ticks``
of them in a ring (tickroom.server.rooms.world_history), which it lends to
the game as the attribute ``past`` (a PastWorlds) before the first step:
``past.at(tick)`` is what remember() returned after the step of ``tick``,
or None when the ring does not hold it. Each input row's client tick is
InputBatch.ticks (the tick the client acted on, docs/protocol.md section
9), so ``game.tick + 1 - ticks[i]`` is how far back row i looked. The
history is the room's, not the game's: it is not in state(), so it
survives no failover (a restored room starts with an empty ring and the
replayed log sees none: a game must treat a missing tick as "judge it now"),
and a game run without a room (tests, benchmarks) keeps NO_PAST. Keep the
bound small (the arena's is 0.4 s): it caps how far back a player with a
high ping, or a lying client, can reach.

Batched forms (optional, for speed): a small room's step costs what its
numpy calls cost, ~1-2 us each whatever the array size, so a node of 50
rooms of 10 pays 50 times for arithmetic it could do once. The node steps
the rooms of one game class due at the same moment together
(tickroom.server.rooms.step_batch) through two classmethods a game may
define:
- ``step_together(games) -> list[events]``: step every game of the list
  (distinct instances, each at its own tick, with its own config, options
  and players) one tick, exactly as ``[g.step() for g in games]`` would:
  every game's state() afterwards bit-identical to what its own step()
  leaves, and each game's events, in the list's order.
- ``apply_inputs_together(games, batches)``: the same for
  ``g.apply_inputs(b)`` of each pair.
- ``view_together(games) -> list[View]``: ``[g.view() for g in games]``,
  the same values (fresh arrays, as view() returns), changing no game.
All are all or nothing: when one raises, no game of the list may have
changed; the server then calls the per-game method of each game, so the
world that makes the game raise fails alone (its room closes with 4103)
and the others play on. A game without them, or a room alone at its
moment, is called game by game; tickroom.testing.check_game's "stepped
together" rule holds the batched forms to these promises.

Optional hooks (the room calls each one a game defines, on its task, between
steps; a game without them keeps today's behaviour; the failure policy of
each is tickroom.server.rooms.game_hooks's):
- ``on_drop(player_id)``: the player's connection dropped (closed, or no
  acks for too long). The avatar stays in the world for the rejoin grace
  (--rejoin-grace); if nobody rejoins by then, ``leave`` is called. An
  exception closes the room with 4103 (its state is not trusted), reported.
- ``on_rejoin(player_id)``: the player is back on a new connection, same
  avatar. After a failover the new node calls it without a preceding
  on_drop (the drop happened on the dead node): make it idempotent. An
  exception closes the room with 4103, reported.
- ``on_end(reason)``: the room ends, ``reason`` one of "closed" (by the
  control API or another node's copy), "idle" (empty for --idle-close),
  "handed_over" (drained or moved to another node: the match goes on there
  from the last checkpoint, so do not change the world here), "shutdown"
  (the node stops without a cluster), "match_ended" (the game asked). Not
  called when the room crashed. An exception is logged and reported; the
  room ends as planned.
- ``on_signal(data) -> answer``: ``data`` is the JSON object of
  ``POST /v1/rooms/{id}/signal``, delivered at the room's next tick; the
  return value (JSON-encodable, at most 16 KiB encoded) is the HTTP
  response's ``answer``. A signal the caller gave up on (2 s) never arrives.
  An exception answers that signal with 500 signal_failed, reported; the
  room plays on (as for a join: leave the state as it was).

What a game asks of its room (end the match: 4107 MATCH_ENDED; kick one
player: 4108 KICKED; set the room's labels) it records in a
``RoomRequests`` kept as the attribute ``requests``
(tickroom.simulation.room_requests); the room carries them out after the
call that made them.

Where the server finds games: built in, the ``tickroom.games`` entry points
of installed packages, or ``--game module.path:Class``
(tickroom.server.rooms.game_catalog).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

# An input field is described with plain data so that the protocol layer can
# validate client payloads against it without importing the simulation:
#   ("float", lo, hi)   finite float in [lo, hi]
#   ("int", lo, hi)     integer in [lo, hi]
#   ("bool",)           true / false
InputFieldSpec = tuple

#: Defaults of a room's game, and so of the server's flags (tickroom.server.config).
DEFAULT_TICK_RATE = 20  # ticks per second (Hz)
DEFAULT_MAX_PLAYERS = 16  # players per room


@dataclass(frozen=True)
class GameConfig:
    """Parameters a room passes to its game at creation."""

    tick_rate: int = DEFAULT_TICK_RATE  # ticks per second
    max_players: int = DEFAULT_MAX_PLAYERS
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dt(self) -> float:
        """Fixed step length in seconds."""
        return 1.0 / self.tick_rate


@dataclass(frozen=True)
class InputBatch:
    """One tick's worth of validated inputs, in columns.

    Row i is one input message from player ``players[i]``. Rows are grouped by
    player and, within a player, ordered by input sequence number, so "the
    last row of a player" is that player's newest input. ``fields[name][i]`` is
    the value of input field ``name`` in row i (float64, int64 or bool arrays).

    ``seqs[i]`` is row i's input sequence number and ``ticks[i]`` the tick
    its client acted on (the input's ``tick``: for lag compensation, see the
    module docstring; 0 when the client did not say), both int64. None when
    the batch does not know them (a batch built by hand, or an input log
    written before they were kept): a game then judges every row now.
    """

    players: np.ndarray  # int64 player entity ids
    fields: Mapping[str, np.ndarray]
    seqs: np.ndarray | None = None
    ticks: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.players.shape[0])

    @classmethod
    def empty(cls, input_fields: Mapping[str, InputFieldSpec]) -> InputBatch:
        dtypes = {"float": np.float64, "int": np.int64, "bool": np.bool_}
        return cls(
            players=np.zeros(0, dtype=np.int64),
            fields={name: np.zeros(0, dtype=dtypes[spec[0]]) for name, spec in input_fields.items()},
            seqs=np.zeros(0, dtype=np.int64),
            ticks=np.zeros(0, dtype=np.int64),
        )


class PastWorlds(Protocol):
    """The room's history of a game's recent ticks (lag compensation)."""

    def at(self, tick: int) -> Mapping[str, np.ndarray] | None:
        """What the game's remember() returned after the step of ``tick``,
        or None when it is not held (too old, not stepped yet, or lost in a
        failover). The arrays are the room's: read them, never modify them."""


class _NoPast:
    def at(self, tick: int) -> Mapping[str, np.ndarray] | None:
        return None


#: The history of a game that runs without a room: nothing is held.
NO_PAST: PastWorlds = _NoPast()


@dataclass(frozen=True)
class View:
    """What clients see of the world at one tick.

    ``ids`` is a uint32 array of the visible entity ids, unique, ascending.
    ``components[name]`` has shape ``(len(ids),) + schema[name]["shape"]`` and
    the dtype the schema names; row i belongs to entity ``ids[i]``.
    """

    ids: np.ndarray
    components: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Visibility:
    """Which player sees which entity of one tick's View.

    ``players`` holds unique player ids (the avatar ids join() returned), one
    per row of ``mask``; ``mask`` is a bool array of shape
    ``(len(players), len(view.ids))`` whose column j is ``view.ids[j]``:
    ``mask[i, j]`` says player ``players[i]`` sees entity ``view.ids[j]``.

    ``components`` holds one mask of the same shape per hidden component the
    game declares (``hidden_components``), every tick: ``components[c][i,
    j]`` says player ``players[i]`` sees component ``c`` of entity
    ``view.ids[j]`` (where it also sees the entity); where it does not, the
    player reads that component as zero bytes. tickroom.simulation.hidden
    builds the usual ones (owner only, one group).
    """

    players: np.ndarray
    mask: np.ndarray
    components: Mapping[str, np.ndarray] = field(default_factory=dict)


class Game(Protocol):
    """A game the server can run. See the module docstring for the rules."""

    #: Registered name, e.g. "arena"; clients ask for a game by it.
    name: ClassVar[str]
    #: Input fields a client may send, by name (see InputFieldSpec).
    input_fields: ClassVar[Mapping[str, InputFieldSpec]]
    #: Networked components: name -> {"dtype": "<f4", "shape": [2]} and an
    #: optional "scale": the wire value is round(value * scale) in dtype and a
    #: client divides by scale. Shapes are per entity (row shape).
    components: ClassVar[Mapping[str, Mapping[str, Any]]]

    config: GameConfig
    tick: int

    def __init__(self, seed: int, config: GameConfig) -> None: ...

    def join(self, name: str) -> int:
        """Add a player; returns its avatar's entity id.

        Raises GameFull when config.max_players are already in, JoinRejected
        (with a reason) to refuse this player for the game's own reasons.
        """

    def leave(self, player_id: int) -> None:
        """Remove a player and its avatar; unknown ids are ignored."""

    def apply_inputs(self, batch: InputBatch) -> None:
        """Record this tick's inputs; they take effect in the next step()."""

    def step(self) -> list[list[Any]]:
        """Advance one fixed step of config.dt; returns this tick's game
        events, each a short msgpack-able list whose first item is the event
        kind, e.g. ["hit", shooter_id, target_id, damage]."""

    def view(self) -> View:
        """The networked view of the world now (wire dtypes, scale applied)."""

    def state(self) -> dict[str, Any]:
        """The whole truth: numpy arrays, ints, strings, and the RNG state
        (as returned by Generator.bit_generator.state). msgpack-able once
        arrays are turned into bytes by the checkpoint codec."""

    @classmethod
    def restore(cls, state: Mapping[str, Any], config: GameConfig) -> Game:
        """Rebuild a game from state(); it continues bit-identically."""


class GameFull(Exception):
    """join() was called with config.max_players players already in."""


MAX_REJECT_REASON_CHARS = 100  # a WebSocket close reason holds 123 bytes


class JoinRejected(Exception):
    """Raised by join() to refuse a player, with a reason the player is told
    (close code 4106 JOIN_REJECTED). The game must leave its state as it was:
    the room and its other players carry on untouched.

    Any other exception from join() is a bug: the join is refused with 4200
    INTERNAL_ERROR, the error is logged (and reported to Sentry), and the room
    plays on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = str(reason)[:MAX_REJECT_REASON_CHARS]
