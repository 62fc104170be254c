"""Protocol version 2's snapshot envelope: positional, not a map of keys.

A version 1 ``snap`` is a msgpack map whose nine short keys ("t", "seq",
"tick", ...) cost ~35 bytes of every snapshot. Version 2 sends the same
values as one msgpack array, in a fixed order (docs/protocol.md, 5.2):

    [seq, tick, base, n, ids, c, rm, ev]

A server message that is an array is a snapshot; every other server message
stays a map with "t". As in version 1, everything after ``seq`` is the same
for every client on the same baseline: it is packed once per baseline
(``pack_shared``) and each client's message is a 1-byte array header, its
own seq, and those bytes (``finish``).
"""

from __future__ import annotations

from typing import Any

import msgpack

from tickroom.protocol import messages as m

FIELDS = ("seq", "tick", "base", "n", "ids", "c", "rm", "ev")
ARRAY_HEADER = bytes([0x90 | len(FIELDS)])  # fixarray of 8
_packer_opts = dict(use_bin_type=True)
_seq_packer = msgpack.Packer(**_packer_opts)  # packs one int: no state between calls


def pack_shared(tick: int, base: int, fields: dict, events: list) -> bytes:
    """Pack the positional values after ``seq`` (shared per baseline)."""
    pk = msgpack.Packer(**_packer_opts)
    return b"".join(
        (
            pk.pack(tick),
            pk.pack(base),
            pk.pack(fields["n"]),
            pk.pack(fields["ids"]),
            pk.pack(fields["c"]),
            pk.pack(fields["rm"]),
            pk.pack(events),
        )
    )


def finish(shared: bytes, seq: int) -> bytes:
    """One client's version 2 snapshot: the array header, its seq, the rest."""
    return b"".join((ARRAY_HEADER, _seq_packer.pack(seq), shared))


def encode(msg: m.Snapshot) -> bytes:
    return finish(pack_shared(msg.tick, msg.base, dict(msg.fields), msg.events), msg.seq)


def decode(obj: Any) -> dict[str, Any]:
    """A decoded version 2 snapshot array as the map of its named values
    (what the delta decoder and version 1 read). Raises ValueError."""
    if not isinstance(obj, list) or len(obj) != len(FIELDS):
        raise ValueError(f"a snapshot is an array of {len(FIELDS)} values")
    return dict(zip(FIELDS, obj, strict=True))
