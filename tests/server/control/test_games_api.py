"""GET /v1/games and room options through the control API, over real HTTP:
accepted, refused with a 400 naming the option, carried in the welcome."""

from __future__ import annotations

import pytest
import trio

from tickroom.client import connect


async def test_games_lists_each_game_with_its_inputs_components_and_options(http, anonymous) -> None:
    response = await http.get("/v1/games")
    assert response.status_code == 200
    body = response.json()
    games = {g["name"]: g for g in body["games"]}
    assert body["default"] == "arena" and {"arena", "tag"} <= set(games)
    assert games["arena"]["inputs"]["fire"] == ["bool"]
    assert games["arena"]["components"]["pos"]["dtype"] == "<i2"
    assert games["tag"]["options"]["cooldown"]["max"] == 10.0
    assert (await anonymous.get("/v1/games")).status_code == 401


async def test_options_reach_the_game_and_the_welcome(http, server) -> None:
    response = await http.post("/v1/rooms", json={"game": "tag", "options": {"size": 80, "speed": 5.5}})
    assert response.status_code == 201, response.text
    room = response.json()
    assert room["options"] == {"size": 80.0, "speed": 5.5, "cooldown": 1.0}
    assert server.registry.get(room["room_id"]).game.config.options == room["options"]
    assert (await http.get(f"/v1/rooms/{room['room_id']}")).json()["options"] == room["options"]
    tickets = (await http.post(f"/v1/rooms/{room['room_id']}/tickets", json={"players": ["ada"]})).json()
    with trio.fail_after(10):
        async with connect(room["ws_url"], ticket=tickets["tickets"]["ada"]) as ada:
            assert ada.welcome.game == "tag"
            assert ada.options == {"size": 80.0, "speed": 5.5, "cooldown": 1.0}
            await ada.send_input(mx=1.0, my=0.0)
            world = await ada.next_world()
            assert world.entity(ada.player) is not None


async def test_a_room_without_options_gets_the_defaults(http) -> None:
    room = (await http.post("/v1/rooms", json={})).json()
    assert room["options"] == {"size": 100.0, "max_projectiles": 1024, "collision": "auto", "fog": 0.0, "rewind": 0.0}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"game": "tag", "options": {"colour": "red"}}, "unknown option 'colour' for game 'tag'"),
        ({"game": "tag", "options": {"size": "big"}}, "option 'size' must be a number"),
        ({"game": "tag", "options": {"size": 5}}, "option 'size' must be in [10.0, 1000.0]"),
        ({"options": {"collision": "fast"}}, "option 'collision' must be one of"),
        ({"options": {"max_projectiles": 0.5}}, "option 'max_projectiles' must be an integer"),
        ({"options": {"size": None}}, "option 'size' must be a number, a string or a boolean"),
        ({"options": {"size": [1]}}, "option 'size' must be a number, a string or a boolean"),
        ({"options": ["size"]}, "'options' must be an object"),
    ],
)
async def test_each_kind_of_bad_option_is_a_400_naming_it(http, server, body, says) -> None:
    response = await http.post("/v1/rooms", json=body)
    assert response.status_code == 400, response.text
    assert says in response.json()["error"]
    assert server.registry.rooms() == []


async def test_options_of_an_unknown_game_are_left_to_the_unknown_game_answer(http) -> None:
    response = await http.post("/v1/rooms", json={"game": "chess", "options": {"x": 1}})
    assert response.status_code == 422 and response.json()["reason"] == "unknown_game"
