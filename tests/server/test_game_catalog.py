"""The game catalog: where games come from, and every way resolving one fails
with a message naming the games that are known."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from tickroom.server.rooms.game_catalog import ENTRY_POINT_GROUP, GameCatalog, GameLoadError
from tickroom.simulation.games.arena import Arena


def points(*pairs: tuple[str, str]):
    return lambda: [EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in pairs]


def test_installed_entry_points_are_found() -> None:
    # The example game (examples/tag) is installed into the test venv as its
    # own package, with its entry point: found exactly as a user's game is.
    catalog = GameCatalog.discover()
    assert {"arena", "tag"} <= set(catalog.names())
    assert catalog.get("tag").__module__ == "tag_game.tag"
    assert catalog.default == "arena"


def test_a_name_picks_the_default_and_module_class_loads_without_packaging() -> None:
    assert GameCatalog.discover("tag").default == "tag"
    catalog = GameCatalog.discover("tickroom.simulation.games.arena:Arena", found=points())
    assert catalog.default == "arena" and catalog.get("arena") is Arena


@pytest.mark.parametrize(
    ("game", "says"),
    [
        ("chess", "unknown game 'chess'"),
        ("tests.games.raises_on_import:Game", "RuntimeError: this game module is broken on purpose"),
        ("tests.games.no_such_module:Game", "ModuleNotFoundError"),
        ("tests.games.broken_games:Missing", "AttributeError"),
        ("tests.games.broken_games:NoName", "name must be a string"),
        ("tests.games.broken_games:BadInputs", "input field 'mx'"),
        ("tests.games.broken_games:BadOptionDefault", "the default of option 'size'"),
        ("not a reference:", "is not module.path:Class"),
    ],
)
def test_an_unknown_or_broken_game_is_an_error_naming_the_known_games(game: str, says: str) -> None:
    with pytest.raises(GameLoadError) as caught:
        GameCatalog.discover(game, found=points(("tag", "tag_game.tag:Tag")))
    assert says in str(caught.value)
    assert "known games: arena, tag" in str(caught.value)


def test_a_broken_entry_point_is_left_out_unless_it_is_the_game_asked_for() -> None:
    found = points(("tag", "tag_game.tag:Tag"), ("boom", "tests.games.raises_on_import:Game"))
    assert GameCatalog.discover(found=found).names() == ["arena", "tag"]
    with pytest.raises(GameLoadError, match="broken on purpose.*known games: arena, tag"):
        GameCatalog.discover("boom", found=found)


def test_an_entry_point_must_load_the_game_it_names() -> None:
    catalog = GameCatalog.discover(found=points(("freeze-tag", "tag_game.tag:Tag")))
    assert catalog.names() == ["arena"]


def test_describe_lists_inputs_components_and_options() -> None:
    described = {g["name"]: g for g in GameCatalog.discover("tag").describe()}
    tag = described["tag"]
    assert tag["default"] is True and described["arena"]["default"] is False
    assert tag["inputs"] == {"mx": ["float", -1.0, 1.0], "my": ["float", -1.0, 1.0]}
    assert set(tag["components"]) == {"pos", "it", "score"}
    assert tag["options"]["size"] == {
        "type": "float", "default": 50.0, "min": 10.0, "max": 1000.0, "doc": "side of the square field, units"
    }  # fmt: skip
    assert described["arena"]["options"]["collision"]["choices"] == ["auto", "all_pairs", "sweep"]
