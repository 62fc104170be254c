"""Arena: the reference game, a small top-down shooter.

Players are circles that move, aim and fire; projectiles fly straight, expire
after a time-to-live or at the walls, and hurt the first living player other
than their shooter that they touch. A kill scores a point; the dead respawn at
a random spot a couple of seconds later.

It is the workload the server is tuned on (rooms of 10 at 20 Hz, see
docs/benchmarks.md, "The budget"): with ~1 us per numpy call the call
count, not the entity count, is the cost of a small room, so a step is a few
dozen array calls and the common case (nobody dead, nothing hit) takes the
shortest path. The array layout is in arena_world, collisions and damage in
arena_physics.

Time is counted in ticks: cooldowns, time-to-live and respawn are stored as
the absolute tick at which they end, so a step compares rather than counts
down every timer.

Hits are tested where things are at the end of each step, not swept along
the path: at 20 Hz a projectile advances 2 units a tick, less than the
2.4-unit hit diameter, so it cannot pass through a player head-on (below
~17 Hz it could).

Entity ids come from one counter shared by players and projectiles, starting
at 1 and never reused. They are uint32 on the wire: at 16 players each firing
4 shots a second that lasts two years of one room's life.

Options (GameConfig.options):
    size             arena side, units (default 100.0, at most 1023 so that
                     positions fit the int16 * 1/32 wire format)
    max_projectiles  projectiles in flight at once (default 1024); a shot
                     fired while the pool is full is dropped and the shooter
                     may fire again next tick
    collision        "auto" (default), "all_pairs" or "sweep"; see
                     arena_physics. Only "auto" is meant for play; the others
                     exist for tests and benchmarks.
    fog              view radius, units (default 0: off, everybody sees
                     everything). With fog, each player sees the entities
                     within the radius of its avatar plus its own (its
                     avatar and its projectiles), arena_world.fog_visibility.
    rewind           lag compensation bound, seconds (default 0: off; 0.4
                     covers ordinary pings): a shot is judged against the
                     players as its shooter saw them, at most this far back
                     (arena_rewind). Off by default: it costs CPU per
                     player-tick (docs/benchmarks.md, "Performance II").

Projectiles are sent once: on the wire a projectile is its origin, velocity
and origin tick, which never change, and clients extrapolate it exactly
(arena_world's docstring, docs/protocol.md 7.3).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np

from tickroom.simulation.game import NO_PAST, GameConfig, GameFull, InputBatch, PastWorlds, View, Visibility
from tickroom.simulation.games import arena_batch, arena_batch_inputs, arena_batch_view, arena_physics, arena_rewind
from tickroom.simulation.games.arena_world import (
    COMPONENTS,
    MAX_SCORE,
    PLAYER_FIELDS,
    ProjectilePool,
    build_view,
    empty_players,
    fog_visibility,
    players_from_columns,
    upgrade_state_v1,
)
from tickroom.simulation.inputs import rows_by_player
from tickroom.simulation.options import Option, choice_option, float_option, int_option

PLAYER_RADIUS = 1.0  # units
PROJECTILE_RADIUS = 0.2  # units
HIT_RADIUS = PLAYER_RADIUS + PROJECTILE_RADIUS  # units, centre to centre
PLAYER_SPEED = 12.0  # units / s, at full stick
PROJECTILE_SPEED = 40.0  # units / s
FIRE_COOLDOWN = 0.25  # s between two shots of one player
PROJECTILE_TTL = 1.5  # s
RESPAWN_DELAY = 2.0  # s from death to respawn
MAX_HP = 100  # hit points
DAMAGE = 25  # hit points per hit
DEFAULT_SIZE = 100.0  # units
MAX_SIZE = 1023.0  # units: int16 positions at 1/32 unit reach 1023.97
DEFAULT_MAX_PROJECTILES = 1024  # projectiles
DEFAULT_REWIND = 0.0  # s: the lag-compensation bound (0: off, opt-in per room), see Arena._lag
MAX_REWIND = 1.0  # s: the largest bound a room may set
NEVER = np.iinfo(np.int64).max  # respawn tick of a living player
STATE_VERSION = 2  # 2: projectiles sent once (origin, t0) and lag compensation (lag, aim_tick)
# Clamp bounds of the (mx, my, aim) input columns.
_INPUT_LO = np.array([[-1.0], [-1.0], [-math.pi]])
_INPUT_HI = np.array([[1.0], [1.0], [math.pi]])


def _ticks(seconds: float, tick_rate: int) -> int:
    """A duration in whole ticks, at least one."""
    return max(1, round(seconds * tick_rate))


class Arena:
    """The arena shooter. See the module docstring for the rules.

    Input semantics: inputs persist. A player keeps moving with the stick
    (mx, my) and aim of its newest input until another input arrives, because
    a client sends its controller state, and a late or lost packet should not
    stop an avatar dead. The fire button is a held trigger in the same way,
    except that a press anywhere in a tick's batch fires even if the newest row
    has already released it, so a quick tap between two ticks is not lost.
    """

    name: ClassVar[str] = "arena"
    input_fields: ClassVar[Mapping[str, tuple]] = {
        "mx": ("float", -1.0, 1.0),
        "my": ("float", -1.0, 1.0),
        "aim": ("float", -math.pi, math.pi),  # any float an atan2 returns
        "fire": ("bool",),
    }
    components: ClassVar[Mapping[str, Mapping[str, Any]]] = COMPONENTS
    options: ClassVar[Mapping[str, Option]] = {
        "size": float_option(DEFAULT_SIZE, lo=4 * PLAYER_RADIUS, hi=MAX_SIZE, doc="arena side, units"),
        "max_projectiles": int_option(
            DEFAULT_MAX_PROJECTILES, lo=0, hi=65536, doc="projectiles in flight at once; more shots are dropped"
        ),
        "collision": choice_option(
            "auto", ("auto", "all_pairs", "sweep"), doc="collision algorithm; only auto is meant for play"
        ),
        "fog": float_option(
            0.0, lo=0.0, hi=2 * MAX_SIZE, doc="view radius, units: each player sees what is this close (0: off)"
        ),
        "rewind": float_option(
            DEFAULT_REWIND, lo=0.0, hi=MAX_REWIND, doc="lag compensation: how far back a shot is judged, s (0: off)"
        ),
    }

    def __init__(self, seed: int, config: GameConfig) -> None:
        """Raises ValueError on options out of range."""
        options = config.options
        size = float(options.get("size", DEFAULT_SIZE))
        if not (2 * PLAYER_RADIUS < size <= MAX_SIZE):
            raise ValueError(f"arena size must be in ({2 * PLAYER_RADIUS}, {MAX_SIZE}], got {size}")
        max_projectiles = int(options.get("max_projectiles", DEFAULT_MAX_PROJECTILES))
        if max_projectiles < 0:
            raise ValueError(f"max_projectiles must be >= 0, got {max_projectiles}")
        collision = options.get("collision", "auto")
        if collision not in ("auto", "all_pairs", "sweep"):
            raise ValueError(f"collision must be auto, all_pairs or sweep, got {collision!r}")
        self.config = config
        self.tick = 0
        self.rng = np.random.default_rng(seed)
        self._size = size
        self._collision = collision
        self._fog = float(options.get("fog", 0.0))
        if not self._fog >= 0.0:
            raise ValueError(f"fog must be >= 0, got {self._fog}")
        dt = config.dt
        self._player_step = PLAYER_SPEED * dt  # units per tick at full stick
        self._projectile_step = PROJECTILE_SPEED * dt  # units per tick
        self._cooldown_ticks = _ticks(FIRE_COOLDOWN, config.tick_rate)
        self._ttl_ticks = _ticks(PROJECTILE_TTL, config.tick_rate)
        self._respawn_ticks = _ticks(RESPAWN_DELAY, config.tick_rate)
        rewind = float(options.get("rewind", DEFAULT_REWIND))
        if not 0.0 <= rewind <= MAX_REWIND:
            raise ValueError(f"rewind must be in [0, {MAX_REWIND}], got {rewind}")
        # Lag compensation (tickroom.simulation.game, "history_ticks"): the
        # room keeps this many past ticks of remember() and lends them as
        # ``past``; without a room (tests, benchmarks) nothing is rewound.
        self.history_ticks = round(rewind * config.tick_rate)
        self.past: PastWorlds = NO_PAST
        self._next_id = 1  # ids start at 1 so that 0 is never an entity
        self._names: list[str] = []
        self._p = empty_players()
        self._q = ProjectilePool(max_projectiles)
        # Derived from the arrays (never checkpointed) so the common step
        # can skip the respawn and death masks with a Python comparison.
        self._n_dead = 0
        self._next_respawn = NEVER

    def _recount(self) -> None:
        """Recompute the derived counters from the arrays."""
        p = self._p
        self._n_dead = int(np.count_nonzero(p["hp"] <= 0))
        self._next_respawn = int(p["respawn_at"].min()) if p["id"].shape[0] else NEVER

    # -- players -------------------------------------------------------------

    def _spawn_points(self, n: int) -> np.ndarray:
        """n uniformly random player centres, fully inside the walls."""
        return self.rng.uniform(PLAYER_RADIUS, self._size - PLAYER_RADIUS, size=(n, 2))

    def join(self, name: str) -> int:
        """Add a player at a random spot; returns its entity id.

        Raises GameFull when config.max_players are already in.
        """
        if len(self._names) >= self.config.max_players:
            raise GameFull(f"arena is full ({self.config.max_players} players)")
        pid = self._next_id
        self._next_id += 1
        row = {
            "id": pid,
            "pos": self._spawn_points(1)[0],
            "step": (0.0, 0.0),
            "aim": 0.0,
            "trigger": False,
            "fire": False,
            "next_fire": 0,
            "hp": MAX_HP,
            "respawn_at": NEVER,
            "score": 0,
            "aim_tick": 0,
        }
        for k, (dt, shape) in PLAYER_FIELDS.items():
            new: np.ndarray = np.asarray(row[k], dtype=dt).reshape((1,) + shape)
            self._p[k] = np.concatenate((self._p[k], new))
        self._names.append(str(name))
        return pid

    def leave(self, player_id: int) -> None:
        """Remove a player; unknown ids are ignored. Its projectiles keep
        flying, and a kill they make scores for nobody."""
        ids = self._p["id"]
        if not 0 <= player_id <= 0xFFFFFFFF:
            return
        row = int(np.searchsorted(ids, player_id))
        if row >= ids.shape[0] or int(ids[row]) != player_id:
            return
        keep = np.ones(ids.shape[0], dtype=bool)
        keep[row] = False
        for k in self._p:
            self._p[k] = self._p[k][keep]
        del self._names[row]
        self._recount()

    # -- inputs --------------------------------------------------------------

    def apply_inputs(self, batch: InputBatch) -> None:
        """Record the tick's inputs: per player, the newest row's stick, aim
        and trigger, and a shot if any row pressed fire. Rows of players not
        in the game (e.g. who left this tick) are ignored.

        The batch is validated upstream; values are still clamped to their
        ranges (NaN to the low end) so a validation slip cannot poison the
        world.
        """
        p = self._p
        n_players = p["id"].shape[0]
        if len(batch) == 0 or n_players == 0:
            return
        rows = rows_by_player(batch.players)
        f = batch.fields
        # (mx, my, aim) of each player's newest row, clamped: fmax/fmin also
        # replace NaN by the bound.
        axes = np.array((f["mx"], f["my"], f["aim"]), dtype=np.float64)[:, rows.last]
        np.fmax(axes, _INPUT_LO, out=axes)
        np.fmin(axes, _INPUT_HI, out=axes)
        fire = np.asarray(f["fire"], dtype=bool)
        trigger, pressed = fire[rows.last], rows.any(fire)
        # The tick the client acted on with its newest aim (0: not said).
        acted_on: Any = 0 if batch.ticks is None else batch.ticks[rows.last]
        ids = rows.ids
        if ids.shape[0] == n_players and not np.count_nonzero(ids != p["id"]):
            slot: Any = slice(None)  # every player sent input: no lookup
        else:
            slot = np.searchsorted(p["id"], ids)
            np.minimum(slot, n_players - 1, out=slot)
            known = p["id"][slot] == ids
            if np.count_nonzero(known) < known.shape[0]:
                slot, axes = slot[known], axes[:, known]
                trigger, pressed = trigger[known], pressed[known]
                if batch.ticks is not None:
                    acted_on = acted_on[known]
        # Diagonals are not faster: the stick vector is clamped to length 1.
        scale = np.hypot(axes[0], axes[1])
        np.maximum(scale, 1.0, out=scale)
        np.divide(self._player_step, scale, out=scale)
        p["step"][slot] = (axes[:2] * scale).T
        p["aim"][slot] = axes[2]
        p["trigger"][slot] = trigger
        p["fire"][slot] = pressed
        p["aim_tick"][slot] = acted_on

    @classmethod
    def apply_inputs_together(cls, games: Sequence[Self], batches: Sequence[InputBatch]) -> None:
        """``for g, b in zip(games, batches): g.apply_inputs(b)``, bit-identically,
        in one pass of numpy calls (arena_batch_inputs); all or nothing."""
        arena_batch_inputs.apply_inputs_together(games, batches, _INPUT_LO, _INPUT_HI)

    # -- the step ------------------------------------------------------------

    def step(self) -> list[list[Any]]:
        """Advance one tick: respawn, move players, fire, move projectiles,
        expire them, resolve hits. Returns the tick's events:
        ["respawn", player_id], then per hit in projectile id order
        ["hit", shooter_id, target_id, damage] and, if it killed,
        ["kill", shooter_id, target_id].
        """
        self.tick += 1
        t = self.tick
        p, q = self._p, self._q
        events: list[list[Any]] = []
        alive = None  # None: every player is alive, no mask needed
        if p["id"].shape[0]:
            if t >= self._next_respawn:
                self._respawn(t, events)
            pos = p["pos"]
            if self._n_dead:
                alive = p["hp"] > 0
                pos += p["step"] * alive[:, None]
            else:
                pos += p["step"]
            # Square arena: one bound for both axes.
            np.maximum(pos, PLAYER_RADIUS, out=pos)
            np.minimum(pos, self._size - PLAYER_RADIUS, out=pos)
            shooting = p["next_fire"] <= t
            shooting &= p["fire"]
            if alive is not None:
                shooting &= alive
            if np.count_nonzero(shooting):
                self._fire(np.flatnonzero(shooting), t)
            np.copyto(p["fire"], p["trigger"])  # a held trigger keeps firing
        n = q.n
        if n == 0:
            return events
        qf, qi = q.f[:n], q.i[:n]
        qpos = qf[:, 5:7]
        qpos += qf[:, 3:5]  # exact: every term is on the 1/VEL_SCALE grid
        live = qi[:, 2] > t
        inside = qpos >= 0.0
        inside &= qpos <= self._size
        live &= inside[:, 0]
        live &= inside[:, 1]
        q_rows, p_rows = self._find_hits(qpos, qi, live, alive, t)
        if q_rows.shape[0]:
            self._hit(q_rows, p_rows, t, events)
            live[q_rows] = False
        m = int(np.count_nonzero(live))
        if m < n:
            q.keep(live, m)
        return events

    @classmethod
    def step_together(cls, games: Sequence[Self]) -> list[list[list[Any]]]:
        """``[g.step() for g in games]``, bit-identically, most of them in
        one pass of numpy calls (arena_batch); all or nothing."""
        return arena_batch.step_together(games, BATCH_RULES)

    def _respawn(self, t: int, events: list) -> None:
        p = self._p
        rows = np.flatnonzero(p["respawn_at"] <= t)
        if rows.shape[0] == 0:  # never draw from the RNG for nobody
            self._recount()
            return
        p["pos"][rows] = self._spawn_points(rows.shape[0])
        p["hp"][rows] = MAX_HP
        p["respawn_at"][rows] = NEVER
        self._recount()
        events.extend(["respawn", pid] for pid in p["id"][rows].tolist())

    def _fire(self, rows: np.ndarray, t: int) -> None:
        """One projectile per shooter row, at the shooter's centre heading
        along its aim, written straight into the pool. Shots beyond its
        capacity are dropped (lowest ids shoot first) and those shooters
        stay ready to fire next tick."""
        p = self._p
        f, i = self._q.reserve(rows.shape[0])
        k = f.shape[0]
        if k == 0:
            return
        rows = rows[:k]
        # t0 = t - 1: a shot leaves its shooter's centre and has flown one
        # step by the end of this tick (arena_world's formula).
        self._q.launch(f, i, p["pos"][rows], p["aim"][rows], self._projectile_step, t - 1)
        i[:, 0] = np.arange(self._next_id, self._next_id + k)
        i[:, 1] = p["id"][rows]
        i[:, 2] = t + self._ttl_ticks
        i[:, 4] = self._lag(rows, t)
        self._next_id += k
        p["next_fire"][rows] = t + self._cooldown_ticks

    def _rewinds(self) -> bool:
        """Lag compensation is on and a room lends its history."""
        return bool(self.history_ticks) and self.past is not NO_PAST

    def _lag(self, rows: np.ndarray, t: int) -> Any:
        """The lag compensation of shots fired now by player ``rows``
        (arena_rewind): how many ticks in the past their hits are judged
        (0 with nothing to rewind to)."""
        if not self._rewinds():
            return 0
        return arena_rewind.shot_lag(self._p["aim_tick"][rows], t, self.history_ticks)

    def _find_hits(
        self, qpos: np.ndarray, qi: np.ndarray, live: np.ndarray, alive: np.ndarray | None, t: int
    ) -> tuple[np.ndarray, np.ndarray]:
        p = self._p
        if not self._rewinds():
            return arena_physics.find_hits(qpos, qi[:, 1], live, p["pos"], p["id"], alive, HIT_RADIUS, self._collision)
        return arena_rewind.find_hits_rewound(
            self.past,
            t,
            qpos,
            qi[:, 1],
            qi[:, 4],
            live,
            p["pos"],
            p["id"],
            alive,
            HIT_RADIUS,
            self._collision,
            self._player_step,
        )

    def remember(self) -> dict[str, np.ndarray]:
        """This tick's entry in the room's history (lag compensation)."""
        return arena_rewind.remember(self._p)

    def _hit(self, q_rows: np.ndarray, p_rows: np.ndarray, t: int, events: list) -> None:
        """Apply damage, kills and scores for the step's hits."""
        p, qi = self._p, self._q.i
        q_rows, p_rows, landed, dealt, killed = arena_physics.resolve_hits(qi[:, 0], q_rows, p_rows, p["hp"], DAMAGE)
        np.subtract.at(p["hp"], p_rows[landed], dealt[landed])
        shooters = qi[q_rows, 1]
        if np.count_nonzero(killed):
            respawn_at = t + self._respawn_ticks
            p["respawn_at"][p_rows[killed]] = respawn_at
            self._n_dead += int(np.count_nonzero(killed))
            self._next_respawn = min(self._next_respawn, respawn_at)
            # The shooter may have left: its id is then not among the players.
            killers = shooters[killed]
            slot = np.searchsorted(p["id"], killers)
            slot_ok = slot < p["id"].shape[0]
            slot_ok[slot_ok] = p["id"][slot[slot_ok]] == killers[slot_ok]
            np.add.at(p["score"], slot[slot_ok], 1)
            np.minimum(p["score"], MAX_SCORE, out=p["score"])
        targets = p["id"][p_rows]
        for s, v, d, k, ok in zip(
            shooters.tolist(), targets.tolist(), dealt.tolist(), killed.tolist(), landed.tolist(), strict=True
        ):
            if ok:
                events.append(["hit", s, v, d])
                if k:
                    events.append(["kill", s, v])

    # -- what clients see, checkpoints ---------------------------------------

    def view(self) -> View:
        """Players and projectiles in ascending id order, in the wire dtypes
        of ``components``. Dead players stay visible with hp 0."""
        return build_view(self._p, self._q)

    @classmethod
    def view_together(cls, games: Sequence[Arena]) -> list[View]:
        """[g.view() for g in games] in one pass over all their rows
        (arena_batch_view; the node's stepper calls it)."""
        return arena_batch_view.views_together(games)

    def visibility(self, view: View) -> Visibility | None:
        """With the ``fog`` option, what each player sees of ``view``: the
        entities within the radius of its avatar, plus its own; without it,
        None (everybody sees everything, at no cost)."""
        if not self._fog:
            return None
        return fog_visibility(view, self._fog, self.tick)

    def state(self) -> dict[str, Any]:
        """The whole truth, as copies (a checkpoint may be encoded off the
        tick path while the game moves on). Player arrays are "p_<field>",
        projectile arrays "q_<field>" (arena_world.PLAYER_FIELDS and
        PROJECTILE_FIELDS). "rng" holds PCG64's 128-bit state as Python ints,
        wider than msgpack's integers: a codec must carry them as strings or
        bytes."""
        state: dict[str, Any] = {
            "game": self.name,
            "version": STATE_VERSION,
            "tick": self.tick,
            "tick_rate": self.config.tick_rate,
            "size": self._size,
            "max_projectiles": self._q.capacity,
            "next_id": self._next_id,
            "names": list(self._names),
            "rng": self.rng.bit_generator.state,
        }
        for k, a in self._p.items():
            state["p_" + k] = a.copy()
        for k, a in self._q.columns().items():
            state["q_" + k] = a
        return state

    @classmethod
    def restore(cls, state: Mapping[str, Any], config: GameConfig) -> Arena:
        """Rebuild a game from state(); it continues bit-identically.

        Arrays may come back flattened or as other numeric dtypes (e.g. from
        bytes): they are reshaped and cast to the layout's. Raises ValueError
        when the state is not an arena's, or when config disagrees with it on
        tick_rate or size (timers and velocities are stored in ticks).
        """
        if state.get("game") != cls.name or state.get("version") not in (1, STATE_VERSION):
            raise ValueError("not an arena state of a known version")
        if state["version"] == 1:
            state = upgrade_state_v1(state)
        game = cls(seed=0, config=config)
        if int(state["tick_rate"]) != config.tick_rate or float(state["size"]) != game._size:
            raise ValueError(
                f"config (tick_rate {config.tick_rate}, size {game._size}) does not match "
                f"the state (tick_rate {state['tick_rate']}, size {state['size']})"
            )
        game.tick = int(state["tick"])
        game._next_id = int(state["next_id"])
        game._names = [str(n) for n in state["names"]]
        game._p = players_from_columns({k: state["p_" + k] for k in PLAYER_FIELDS})
        if {a.shape[0] for a in game._p.values()} != {len(game._names)}:
            raise ValueError("inconsistent player array lengths in arena state")
        game._q = ProjectilePool.from_columns(
            {k[2:]: v for k, v in state.items() if k.startswith("q_")}, int(state["max_projectiles"])
        )
        game.rng.bit_generator.state = dict(state["rng"])
        game._recount()
        return game


#: What arena_batch needs of the rules above.
BATCH_RULES = arena_batch.Rules(player_radius=PLAYER_RADIUS, hit_radius=HIT_RADIUS, damage=DAMAGE, step=Arena.step)
