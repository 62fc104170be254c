"""Room options: what a game declares it can be configured with, and the
check that turns a matchmaker's JSON object into a room's
``GameConfig.options``.

A game lists its options as a class attribute, one ``Option`` per name::

    options = {
        "size": float_option(100.0, lo=4.0, hi=1023.0, doc="arena side, units"),
        "rounds": int_option(3, lo=1, hi=99),
        "friendly_fire": bool_option(False),
        "mode": choice_option("ffa", ("ffa", "teams")),
    }

and may add a classmethod ``check_options(options)`` for rules that span
options (it raises ``ValueError``). ``resolve_options`` is what the server
calls: unknown names, wrong types and values out of range are refused with an
``OptionError`` naming the option; what was not given takes its default, so
a room's options are always complete (and a checkpoint carries all of them).

Pure Python: the control API (HTTP 400), the registry and the test kit
(tickroom.testing) share this one check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPTION_KINDS = ("int", "float", "bool", "choice")
MAX_OPTIONS = 64  # options a game may declare (and a request may carry)
MAX_CHOICE_CHARS = 64  # length of one choice's text


class OptionError(ValueError):
    """An option a request gave is unknown, of the wrong type or out of
    range. ``name`` is the option's name (None: a rule across options)."""

    def __init__(self, name: str | None, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


@dataclass(frozen=True)
class Option:
    """One room option: its kind, default and bounds (inclusive)."""

    kind: str  # one of OPTION_KINDS
    default: Any
    lo: float | None = None  # int and float: the smallest value allowed
    hi: float | None = None  # int and float: the largest value allowed
    choices: tuple[str, ...] = ()  # choice: the values allowed
    doc: str = ""

    def check(self, name: str, value: Any) -> Any:
        """``value`` as this option's type. Raises OptionError naming ``name``."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise OptionError(name, f"option {name!r} must be true or false")
            return value
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise OptionError(name, f"option {name!r} must be one of {list(self.choices)}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise OptionError(name, f"option {name!r} must be a number in [{self.lo}, {self.hi}]")
        if self.kind == "int":
            if isinstance(value, float):
                if not value.is_integer():
                    raise OptionError(name, f"option {name!r} must be an integer in [{self.lo}, {self.hi}]")
                value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise OptionError(name, f"option {name!r} must be finite")
        assert self.lo is not None and self.hi is not None
        if not self.lo <= value <= self.hi:
            raise OptionError(name, f"option {name!r} must be in [{self.lo}, {self.hi}], got {value}")
        return value

    def describe(self) -> dict[str, Any]:
        """The option as JSON (GET /v1/games)."""
        out: dict[str, Any] = {"type": self.kind, "default": self.default}
        if self.kind in ("int", "float"):
            out["min"], out["max"] = self.lo, self.hi
        if self.kind == "choice":
            out["choices"] = list(self.choices)
        if self.doc:
            out["doc"] = self.doc
        return out


def int_option(default: int, *, lo: int, hi: int, doc: str = "") -> Option:
    """An integer in [lo, hi]."""
    return Option("int", default, lo=lo, hi=hi, doc=doc)


def float_option(default: float, *, lo: float, hi: float, doc: str = "") -> Option:
    """A finite number in [lo, hi] (a JSON integer is accepted too)."""
    return Option("float", float(default), lo=lo, hi=hi, doc=doc)


def bool_option(default: bool, *, doc: str = "") -> Option:
    """true or false."""
    return Option("bool", default, doc=doc)


def choice_option(default: str, choices: tuple[str, ...], *, doc: str = "") -> Option:
    """One string out of ``choices``."""
    return Option("choice", default, choices=tuple(choices), doc=doc)


def declared_options(game_cls: type) -> Mapping[str, Option]:
    """The options ``game_cls`` declares (none when it declares none)."""
    return getattr(game_cls, "options", None) or {}


def check_declaration(game_cls: type) -> None:
    """Raises ValueError when the game's ``options`` are malformed: not
    Options, a kind we do not know, bounds the wrong way round, or a
    default that its own check refuses."""
    declared = declared_options(game_cls)
    if not isinstance(declared, Mapping) or len(declared) > MAX_OPTIONS:
        raise ValueError(f"options must be a mapping of at most {MAX_OPTIONS} names to Option")
    for name, option in declared.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"option name {name!r} is not an identifier")
        if not isinstance(option, Option) or option.kind not in OPTION_KINDS:
            raise ValueError(f"option {name!r} is not an Option of kind {OPTION_KINDS}")
        if option.kind in ("int", "float") and (option.lo is None or option.hi is None or option.lo > option.hi):
            raise ValueError(f"option {name!r} needs lo <= hi")
        if option.kind == "choice" and (
            not option.choices or any(not isinstance(c, str) or len(c) > MAX_CHOICE_CHARS for c in option.choices)
        ):
            raise ValueError(f"option {name!r} needs choices of at most {MAX_CHOICE_CHARS} characters")
        try:
            option.check(name, option.default)
        except OptionError as exc:
            raise ValueError(f"the default of {exc.message}") from None


def resolve_options(game_cls: type, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The complete options of a room of ``game_cls``: ``given`` checked
    against the declaration, the rest at their defaults, then the game's own
    ``check_options`` (if any). Raises OptionError naming the option."""
    declared = declared_options(game_cls)
    game_name = getattr(game_cls, "name", game_cls.__name__)
    given = given or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise OptionError(unknown[0], f"unknown option {unknown[0]!r} for game {game_name!r}; known: {known}")
    options = {name: option.check(name, given[name]) if name in given else option.default
               for name, option in declared.items()}  # fmt: skip
    cross_check = getattr(game_cls, "check_options", None)
    if cross_check is not None:
        try:
            cross_check(options)
        except OptionError:
            raise
        except ValueError as exc:
            raise OptionError(None, f"options refused by {game_name!r}: {exc}") from None
    return options
