"""tickroom.server.rooms.admission: the ticket check of the join path, on a fake clock."""

from __future__ import annotations

import pytest

from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code
from tickroom.protocol.tickets import TicketError, sign_ticket
from tickroom.server.rooms.admission import TICKET_LEEWAY_S, Admission

SECRET = b"s3cret"
NOW = 1_800_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def join(**fields) -> m.Join:
    return m.Join(version=m.PROTOCOL_VERSION, **fields)


def ticket(room: str = "r1", player: str = "alice", ttl: int = 60, nonce: str = "n1") -> str:
    return sign_ticket(SECRET, room, player, NOW + ttl, nonce)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def admission(clock) -> Admission:
    return Admission(SECRET, clock=clock)


def refused(admission: Admission, msg: m.Join) -> TicketError:
    with pytest.raises(TicketError) as caught:
        admission.check(msg)
    return caught.value


def test_the_ticket_decides_room_and_name(admission) -> None:
    rewritten, claims = admission.check(join(name="spoofed", ticket=ticket()))
    assert (rewritten.room, rewritten.name) == ("r1", "alice")
    assert claims is not None and claims.player == "alice"
    assert admission.accepted == 1


def test_a_join_without_a_ticket_is_refused(admission) -> None:
    error = refused(admission, join(room="r1", name="alice"))
    assert error.code == Code.INVALID_TICKET
    assert admission.refused == {"missing": 1}


def test_a_rejoin_needs_no_ticket(admission) -> None:
    msg = join(room="r1", session="tok")
    assert admission.check(msg) == (msg, None)


def test_each_refusal_is_counted_by_reason(admission, clock) -> None:
    assert refused(admission, join(ticket="v1.x.y")).code == Code.INVALID_TICKET
    assert refused(admission, join(ticket=sign_ticket(b"other", "r1", "a", NOW + 60, "n"))).code == Code.INVALID_TICKET
    assert refused(admission, join(room="r2", ticket=ticket())).code == Code.TICKET_WRONG_ROOM
    clock.now = NOW + 60 + TICKET_LEEWAY_S
    assert refused(admission, join(ticket=ticket())).code == Code.TICKET_EXPIRED
    assert admission.refused == {"malformed": 1, "forged": 1, "wrong_room": 1, "expired": 1}


def test_a_ticket_admits_one_connection(admission) -> None:
    token = ticket()
    admission.check(join(ticket=token))
    error = refused(admission, join(ticket=token))
    assert (error.code, admission.refused["reused"]) == (Code.INVALID_TICKET, 1)
    # Another ticket for the same player (a new nonce) is fine.
    admission.check(join(ticket=ticket(nonce="n2")))


def test_used_nonces_are_forgotten_once_their_tickets_expired(admission, clock) -> None:
    admission.check(join(ticket=ticket(ttl=10)))
    clock.now = NOW + 10 + TICKET_LEEWAY_S + 1
    admission.check(join(ticket=ticket(ttl=100, nonce="n9")))
    assert admission.remembered == 1


def test_without_a_secret_nothing_is_checked(clock) -> None:
    admission = Admission(None, clock=clock)
    msg = join(room="r1", ticket="anything.well.formed")
    assert admission.check(msg) == (msg, None) and not admission.tickets_required


def test_optional_tickets_still_check_the_ones_sent(clock) -> None:
    admission = Admission(SECRET, required=False, clock=clock)
    msg = join(room="lobby")
    assert admission.check(msg) == (msg, None)
    assert refused(admission, join(ticket="v1.a.b")).code == Code.INVALID_TICKET


def test_a_released_ticket_can_be_used_again(admission) -> None:
    token = ticket()
    _, claims = admission.check(join(ticket=token))
    admission.release(claims)
    assert admission.accepted == 0
    admission.check(join(ticket=token))
