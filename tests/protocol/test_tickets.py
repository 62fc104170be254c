"""Join tickets, sans-IO: signing, every refusal, and the documented recipe."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickroom.protocol.errors import Code, RemoteProtocolError
from tickroom.protocol.tickets import TicketClaims, TicketError, sign_ticket, verify_ticket
from tickroom.protocol.validate import MAX_TICKET_CHARS, TOKEN_RE

SECRET = b"test-secret"
ROOM = "arena-00c0ffee"
EXP = 1_800_000_000
DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(payload: dict | bytes, secret: bytes = SECRET) -> str:
    """A correctly signed ticket around any payload (the signer's bugs)."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signed = f"v1.{b64url(raw)}"
    return f"{signed}.{b64url(hmac.new(secret, signed.encode(), hashlib.sha256).digest())}"


def refusal(token: str, *, now: float = EXP - 10, room: str | None = None, secret: bytes = SECRET) -> TicketError:
    with pytest.raises(TicketError) as caught:
        verify_ticket(secret, token, now, room)
    assert isinstance(caught.value, RemoteProtocolError) and caught.value.fatal
    return caught.value


def test_a_signed_ticket_verifies_and_says_who_and_where() -> None:
    token = sign_ticket(SECRET, ROOM, "alice", EXP, "n0nce")
    assert verify_ticket(SECRET, token, EXP - 1, ROOM) == TicketClaims(ROOM, "alice", EXP, "n0nce")
    assert verify_ticket(SECRET, token, EXP - 1) == TicketClaims(ROOM, "alice", EXP, "n0nce")


def test_a_ticket_fits_the_join_field() -> None:
    token = sign_ticket(SECRET, "r" * 64, "p" * 64, 2**53, "n" * 64)
    assert TOKEN_RE.fullmatch(token) and len(token) <= MAX_TICKET_CHARS


def test_expiry_is_exclusive_and_the_leeway_extends_it() -> None:
    token = sign_ticket(SECRET, ROOM, "alice", EXP, "n")
    assert refusal(token, now=EXP).code == Code.TICKET_EXPIRED
    assert refusal(token, now=EXP + 3600).reason == "expired"
    assert verify_ticket(SECRET, token, EXP + 4.9, leeway_s=5).player == "alice"
    with pytest.raises(TicketError):
        verify_ticket(SECRET, token, EXP + 5, leeway_s=5)


def test_a_ticket_for_another_room_is_wrong_room() -> None:
    token = sign_ticket(SECRET, ROOM, "alice", EXP, "n")
    error = refusal(token, room="arena-other")
    assert (error.code, error.reason) == (Code.TICKET_WRONG_ROOM, "wrong_room")


def test_expiry_is_checked_before_the_room() -> None:
    token = sign_ticket(SECRET, ROOM, "alice", EXP, "n")
    assert refusal(token, now=EXP + 1, room="elsewhere").code == Code.TICKET_EXPIRED


def test_another_secret_or_any_changed_character_is_forged() -> None:
    token = sign_ticket(SECRET, ROOM, "alice", EXP, "n")
    assert refusal(token, secret=b"other").reason == "forged"
    header, payload, mac = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["p"] = "mallory"
    for tampered in (
        f"{header}.{b64url(json.dumps(claims).encode())}.{mac}",
        f"{header}.{payload}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        f"{header}.{payload}.{b64url(b'x' * 32)}",
    ):
        error = refusal(tampered)
        assert (error.code, error.reason) == (Code.INVALID_TICKET, "forged")


MALFORMED = {
    "empty": "",
    "one part": "v1",
    "two parts": "v1.abc",
    "four parts": "v1.a.b.c",
    "other version": sign_ticket(SECRET, ROOM, "a", EXP, "n").replace("v1.", "v2.", 1),
    "padded signature": sign_ticket(SECRET, ROOM, "a", EXP, "n") + "=",
    "signature not base64": "v1.eyJ9.%%%",
    "too long": "v1." + "A" * MAX_TICKET_CHARS + ".AAAA",
    "not json": forge(b"\xff\xfe not json"),
    "json list": forge(b"[1, 2]"),
    "no room": forge({"p": "a", "exp": EXP, "n": "n"}),
    "room with a slash": forge({"r": "a/b", "p": "a", "exp": EXP, "n": "n"}),
    "player with a space": forge({"r": ROOM, "p": "a b", "exp": EXP, "n": "n"}),
    "exp a string": forge({"r": ROOM, "p": "a", "exp": str(EXP), "n": "n"}),
    "exp a bool": forge({"r": ROOM, "p": "a", "exp": True, "n": "n"}),
    "exp a float": forge({"r": ROOM, "p": "a", "exp": EXP + 0.5, "n": "n"}),
    "nonce missing": forge({"r": ROOM, "p": "a", "exp": EXP}),
}


@pytest.mark.parametrize("token", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_tickets_are_invalid(token: str) -> None:
    assert refusal(token).code == Code.INVALID_TICKET


@given(st.text(max_size=200))
def test_no_text_raises_anything_but_a_ticket_error(text: str) -> None:
    with pytest.raises(TicketError):
        verify_ticket(SECRET, text, 0)


@pytest.mark.parametrize(
    "args",
    [(b"", ROOM, "a", EXP, "n"), (SECRET, "no room", "a", EXP, "n"), (SECRET, ROOM, "", EXP, "n"),
     (SECRET, ROOM, "a", -1, "n"), (SECRET, ROOM, "a", EXP, "n.n"), (SECRET, ROOM, "a", True, "n")],
)  # fmt: skip
def test_sign_refuses_what_verify_would_refuse(args) -> None:
    with pytest.raises(ValueError):
        sign_ticket(*args)


def _doc_example() -> dict[str, str]:
    section = DOC.split("### 3.9 Join tickets", 1)[1].split("\n## ", 1)[0]
    dump = section.split("```python", 1)[0]
    rows = dict(re.findall(r"^    (payload JSON|payload|signed bytes|HMAC-SHA256|ticket) +(\S+)", dump, re.M))
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    return {**rows, "code": code}


def test_the_documented_worked_example_verifies() -> None:
    example = _doc_example()
    secret = b"correct horse battery staple"
    claims = verify_ticket(secret, example["ticket"], EXP - 2 * 10**8, "arena-7f3a9c01")
    assert claims == TicketClaims("arena-7f3a9c01", "alice", 1767225600, "q8LkZ0Yw")
    assert example["ticket"] == sign_ticket(secret, "arena-7f3a9c01", "alice", 1767225600, "q8LkZ0Yw")
    assert example["payload"] == b64url(example["payload JSON"].encode())
    assert example["signed bytes"] == "v1." + example["payload"]
    assert hmac.new(secret, example["signed bytes"].encode(), hashlib.sha256).hexdigest() == example["HMAC-SHA256"]


def test_the_documented_python_recipe_signs_tickets_the_server_accepts() -> None:
    namespace: dict = {}
    exec(_doc_example()["code"], namespace)
    token = namespace["sign"]("shared secret", ROOM, "bob@example", EXP, "xyz")
    assert verify_ticket(b"shared secret", token, EXP - 1, ROOM) == TicketClaims(ROOM, "bob@example", EXP, "xyz")


def test_the_documented_python_recipe_reproduces_the_worked_example() -> None:
    # issue 16, item 11: the recipe once used json.dumps' defaults, which the example does not.
    example = _doc_example()
    namespace: dict = {}
    exec(example["code"], namespace)
    token = namespace["sign"]("correct horse battery staple", "arena-7f3a9c01", "alice", 1767225600, "q8LkZ0Yw")
    assert token == example["ticket"]


def test_a_padded_payload_is_refused() -> None:
    # Unpadded base64url only (3.9): a payload whose length needs padding, padded, is invalid.
    checked = 0
    for player in ("a", "ab", "abc"):
        version, payload, _ = sign_ticket(SECRET, ROOM, player, EXP, "n").split(".")
        if len(payload) % 4:
            padded = f"{version}.{payload}{'=' * (-len(payload) % 4)}"  # signed as sent: only the padding is wrong
            token = f"{padded}.{b64url(hmac.new(SECRET, padded.encode(), hashlib.sha256).digest())}"
            assert refusal(token).code == Code.INVALID_TICKET
            checked += 1
    assert checked >= 2
