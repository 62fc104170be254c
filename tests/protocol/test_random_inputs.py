"""protocol/random_inputs.py: random inputs built from a welcome's input fields
pass the server's validation for any game, exactly (wire types, ranges), vary,
and repeat with the seed."""

from __future__ import annotations

import math
import random

import pytest

from tickroom.protocol.random_inputs import RandomInputs
from tickroom.protocol.validate import InputFields, validate_client_message
from tickroom.simulation.games.arena import Arena

TAG_INPUTS = {"mx": ["float", -1.0, 1.0], "my": ["float", -1.0, 1.0]}  # examples/tag, as its welcome says
MIXED_INPUTS = {
    "throttle": ["float", 0, 1],  # integer bounds for a float field
    "slot": ["int", 0, 3],
    "turn": ["float", -math.inf, math.inf],
    "lift": ["float", 10.0, math.inf],
    "jump": ["bool"],
    "fixed": ["int", 7, 7],
}
N = 2000


@pytest.mark.parametrize("fields", [InputFields(Arena.input_fields).describe(), TAG_INPUTS, MIXED_INPUTS])
def test_every_input_passes_the_servers_validation_with_exact_wire_types(fields):
    validator = InputFields(fields)
    inputs = RandomInputs(fields, random.Random(1))
    for seq in range(1, N + 1):
        payload = inputs.next()
        assert set(payload) == set(fields)
        for name, spec in fields.items():
            wire_type = {"float": float, "int": int, "bool": bool}[spec[0]]
            assert type(payload[name]) is wire_type, (name, payload[name])
        assert validator.validate(payload) == payload
        msg = validate_client_message({"t": "input", "seq": seq, "tick": 0, "in": payload}, validator)
        assert msg.data == payload


def test_values_wander_over_the_range_and_bools_are_pressed_now_and_then():
    inputs = RandomInputs(MIXED_INPUTS, random.Random(2))
    seen = [inputs.next() for _ in range(N)]
    throttle = [p["throttle"] for p in seen]
    assert min(throttle) < 0.2 and max(throttle) > 0.8  # the whole range, not one spot
    steps = [abs(b - a) for a, b in zip(throttle, throttle[1:], strict=False)]
    assert max(steps) <= 0.15 + 1e-12  # a stick moves, it does not teleport
    assert {p["slot"] for p in seen} == {0, 1, 2, 3}
    assert all(p["fixed"] == 7 for p in seen)
    assert all(math.isfinite(p["turn"]) and -1.0 <= p["turn"] <= 1.0 for p in seen)
    assert all(10.0 <= p["lift"] <= 12.0 for p in seen)
    jumps = sum(p["jump"] for p in seen)
    assert 0.05 * N < jumps < 0.2 * N


def test_the_same_seed_gives_the_same_inputs_and_another_differs():
    def run(seed: int) -> list[dict]:
        inputs = RandomInputs(TAG_INPUTS, random.Random(seed))
        return [inputs.next() for _ in range(50)]

    assert run(5) == run(5)
    assert run(5) != run(6)


@pytest.mark.parametrize(
    "fields",
    [
        {"x": ["vector", 0, 1]},  # unknown kind
        {"x": ["float", 1, 0]},  # lo > hi
        {"x": ["int", 0.2, 0.8]},  # no integer in range
        {"x": ["float", math.inf, math.inf]},  # no finite value
        {"x": "float"},  # not a spec
    ],
)
def test_a_description_with_no_valid_input_is_refused(fields):
    with pytest.raises(ValueError):
        RandomInputs(fields, random.Random(0))


def test_a_game_without_inputs_gets_empty_payloads():
    assert RandomInputs({}, random.Random(0)).next() == {}
