"""docs/control-api.yaml against the routes the application serves, and
against answers of the running server."""

from __future__ import annotations

from pathlib import Path

import yaml

from tickroom.server.control.api import ROUTES

SPEC = yaml.safe_load((Path(__file__).resolve().parents[3] / "docs" / "control-api.yaml").read_text())
METHODS = {"get", "post", "put", "delete", "patch"}


def test_every_served_route_is_documented_and_vice_versa() -> None:
    served = {(method, template) for method, template, _ in ROUTES}
    documented = {
        (method.upper(), path) for path, item in SPEC["paths"].items() for method in item if method in METHODS
    }
    assert served == documented


def test_public_routes_are_the_ones_without_security() -> None:
    from tickroom.server.control.auth import PUBLIC_PATHS

    public = {
        path
        for path, item in SPEC["paths"].items()
        for method, op in item.items()
        if method in METHODS and op.get("security") == []
    }
    assert public == PUBLIC_PATHS


async def test_answers_carry_the_documented_status_codes_and_fields(http) -> None:
    """Each answer's status is one the document lists for that operation, and
    its JSON has the documented required fields."""
    schemas = SPEC["components"]["schemas"]
    room = (await http.post("/v1/rooms", json={"labels": {"a": "b"}})).json()
    calls = [
        ("post", "/v1/rooms", "/v1/rooms", {}, "Room"),
        ("get", "/v1/rooms/{room_id}", f"/v1/rooms/{room['room_id']}", None, "RoomDetail"),
        ("get", "/v1/rooms/{room_id}", "/v1/rooms/missing", None, "Error"),
        ("post", "/v1/rooms", "/v1/rooms", {"max_players": -1}, "Error"),
        ("post", "/v1/rooms/{room_id}/tickets", f"/v1/rooms/{room['room_id']}/tickets", {"players": ["p"]}, None),
        ("post", "/v1/drain", "/v1/drain", None, None),
        ("post", "/v1/rooms", "/v1/rooms", {}, "Error"),
    ]
    for method, template, path, body, schema in calls:
        response = await http.request(method.upper(), path, json=body)
        documented = SPEC["paths"][template][method]["responses"]
        assert str(response.status_code) in documented, (method, path, response.status_code)
        if schema is not None:
            required = (
                schemas[schema].get("required") or schemas[schema]["allOf"][1]["required"] + schemas["Room"]["required"]
            )
            assert set(required) <= set(response.json()), (path, response.json())
