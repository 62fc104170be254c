"""Signed join tickets, sans-IO: no sockets, no clock (``now`` is passed in).

A matchmaker (or this server's control API) signs a ticket that admits one
player to one room until an expiry; any node holding the shared secret checks
it on the join without a database. The format (docs/protocol.md, "Join
tickets") is

    v1.<base64url(payload)>.<base64url(HMAC-SHA256(secret, "v1." + base64url(payload)))>

with unpadded base64url (RFC 4648 section 5) and the payload a JSON object
``{"r": room id, "p": player id, "exp": unix seconds, "n": nonce}``. The MAC
covers the *encoded* text, so a verifier never has to re-serialise JSON the
way the signer did: any JSON encoder works for signing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

from tickroom.protocol.errors import Code, RemoteProtocolError
from tickroom.protocol.validate import MAX_TICKET_CHARS, ROOM_ID_RE

VERSION = "v1"
MAX_PLAYER_ID_CHARS = 64
MAX_NONCE_CHARS = 64
MAX_EXPIRY = 2**53  # any int a JSON number keeps exactly; far beyond any real expiry
PLAYER_ID_RE = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
NONCE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class TicketClaims:
    """What a verified ticket says."""

    room: str  # wire "r"
    player: str  # wire "p": the player's identity, also its display name
    expires: int  # wire "exp", unix seconds
    nonce: str  # wire "n"


class TicketError(RemoteProtocolError):
    """A ticket was refused. ``code`` is INVALID_TICKET, TICKET_EXPIRED or
    TICKET_WRONG_ROOM; always fatal. ``reason`` is a short machine-readable
    label (for metrics); ``message`` is safe to show the client and never
    contains the ticket or the secret."""

    def __init__(self, code: Code, reason: str, message: str) -> None:
        super().__init__(code, message, fatal=True)
        self.reason = reason


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _B64URL_RE.fullmatch(text):
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, signed_part: str) -> bytes:
    return hmac.new(secret, signed_part.encode("ascii"), hashlib.sha256).digest()


def sign_ticket(secret: bytes, room: str, player: str, exp: int, nonce: str) -> str:
    """Return a ticket admitting ``player`` to ``room`` until ``exp`` (unix
    seconds). Raises ValueError on an argument the verifier would refuse."""
    if not secret:
        raise ValueError("the ticket secret is empty")
    if not ROOM_ID_RE.fullmatch(room):
        raise ValueError(f"room id must match {ROOM_ID_RE.pattern}")
    if not PLAYER_ID_RE.fullmatch(player):
        raise ValueError(f"player id must match {PLAYER_ID_RE.pattern}")
    if not NONCE_RE.fullmatch(nonce):
        raise ValueError(f"nonce must match {NONCE_RE.pattern}")
    if isinstance(exp, bool) or not isinstance(exp, int) or not 0 <= exp <= MAX_EXPIRY:
        raise ValueError("exp must be an integer number of unix seconds")
    payload = json.dumps({"r": room, "p": player, "exp": exp, "n": nonce}, separators=(",", ":"), sort_keys=True)
    signed_part = f"{VERSION}.{_b64encode(payload.encode('utf-8'))}"
    token = f"{signed_part}.{_b64encode(_mac(secret, signed_part))}"
    if len(token) > MAX_TICKET_CHARS:
        raise ValueError(f"the ticket would be longer than {MAX_TICKET_CHARS} characters")
    return token


def verify_ticket(
    secret: bytes, token: str, now: float, room: str | None = None, *, leeway_s: float = 0.0
) -> TicketClaims:
    """Check ``token`` and return its claims.

    ``now`` is unix seconds; a ticket is expired once ``now >= exp +
    leeway_s`` (the leeway absorbs clock skew between signer and node).
    ``room``, when given, is the room the join names: it must be the
    ticket's. Raises TicketError. The MAC is checked (in constant time)
    before the payload is parsed, so nothing an attacker forges reaches the
    JSON decoder.
    """

    def invalid(why: str) -> TicketError:
        return TicketError(
            Code.INVALID_TICKET, "malformed" if why != "bad signature" else "forged", f"invalid ticket: {why}"
        )

    if not isinstance(token, str) or len(token) > MAX_TICKET_CHARS:
        raise invalid("not a ticket")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise invalid(f"not a {VERSION} ticket")
    signed_part = f"{parts[0]}.{parts[1]}"
    try:
        signature = _b64decode(parts[2])
    except (ValueError, binascii.Error):
        raise invalid("signature is not base64url") from None
    if not hmac.compare_digest(signature, _mac(secret, signed_part)):
        raise invalid("bad signature")
    # Signed by someone holding the secret: a malformed payload now is the
    # signer's bug, still refused as INVALID_TICKET.
    try:
        payload = json.loads(_b64decode(parts[1]).decode("utf-8"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid("payload is not base64url JSON") from None
    if not isinstance(payload, dict):
        raise invalid("payload is not a JSON object")
    r, p, exp, n = (payload.get(key) for key in ("r", "p", "exp", "n"))
    if not isinstance(r, str) or not ROOM_ID_RE.fullmatch(r):
        raise invalid("'r' is not a room id")
    if not isinstance(p, str) or not PLAYER_ID_RE.fullmatch(p):
        raise invalid("'p' is not a player id")
    if isinstance(exp, bool) or not isinstance(exp, int) or not 0 <= exp <= MAX_EXPIRY:
        raise invalid("'exp' is not an integer")
    if not isinstance(n, str) or not NONCE_RE.fullmatch(n):
        raise invalid("'n' is not a nonce")
    if now >= exp + leeway_s:
        raise TicketError(Code.TICKET_EXPIRED, "expired", "the ticket has expired; ask the matchmaker for a new one")
    if room is not None and room != r:
        raise TicketError(Code.TICKET_WRONG_ROOM, "wrong_room", "the ticket is for another room")
    return TicketClaims(room=r, player=p, expires=exp, nonce=n)
