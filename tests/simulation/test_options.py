"""Room options: declared by a game, checked with a message naming the
option, completed with the defaults."""

from __future__ import annotations

import pytest

from tickroom.simulation.games.arena import Arena
from tickroom.simulation.options import OptionError, check_declaration, resolve_options


def test_nothing_given_is_every_default() -> None:
    assert resolve_options(Arena, None) == {
        "size": 100.0,
        "max_projectiles": 1024,
        "collision": "auto",
        "fog": 0.0,
        "rewind": 0.0,
    }


def test_given_values_are_checked_and_converted() -> None:
    got = resolve_options(Arena, {"size": 60, "max_projectiles": 8.0, "collision": "sweep"})
    assert got == {"size": 60.0, "max_projectiles": 8, "collision": "sweep", "fog": 0.0, "rewind": 0.0}
    assert type(got["size"]) is float and type(got["max_projectiles"]) is int


@pytest.mark.parametrize(
    ("given", "name", "says"),
    [
        (
            {"sise": 60},
            "sise",
            "unknown option 'sise' for game 'arena'; known: collision, fog, max_projectiles, rewind, size",
        ),
        ({"size": "big"}, "size", "must be a number"),
        ({"size": True}, "size", "must be a number"),
        ({"size": 2000}, "size", "must be in [4.0, 1023.0]"),
        ({"size": float("nan")}, "size", "must be finite"),
        ({"max_projectiles": 1.5}, "max_projectiles", "must be an integer"),
        ({"max_projectiles": -1}, "max_projectiles", "must be in [0, 65536]"),
        ({"collision": "fast"}, "collision", "must be one of ['auto', 'all_pairs', 'sweep']"),
    ],
)
def test_each_kind_of_bad_option_is_refused_naming_it(given, name, says) -> None:
    with pytest.raises(OptionError) as caught:
        resolve_options(Arena, given)
    assert caught.value.name == name and says in caught.value.message


def test_a_game_may_check_options_together() -> None:
    class Narrow(Arena):
        @classmethod
        def check_options(cls, options) -> None:
            if options["size"] < 50 and options["max_projectiles"] > 100:
                raise ValueError("a small arena holds at most 100 projectiles")

    assert resolve_options(Narrow, {"size": 40, "max_projectiles": 100})["size"] == 40.0
    with pytest.raises(OptionError, match="refused by 'arena': a small arena holds at most 100"):
        resolve_options(Narrow, {"size": 40})


def test_declarations_are_checked() -> None:
    check_declaration(Arena)

    class Bad(Arena):
        options = {"size": "100"}

    with pytest.raises(ValueError, match="is not an Option"):
        check_declaration(Bad)
