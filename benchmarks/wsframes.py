"""What parsing a client's WebSocket input costs, per message.

protocol/websocket_frames.py's FrameParser against wsproto's FrameProtocol (the layer
under wsproto's events) on the same bytes: 32-byte masked binary frames, one
per receive call (the usual tick) and five per call. Median of repeats.

    python benchmarks/wsframes.py
"""

from __future__ import annotations

import statistics
import sys
import timeit
from pathlib import Path

from wsproto.frame_protocol import FrameProtocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tickroom.protocol.websocket_frames import FrameParser  # noqa: E402

NUMBER = 20000
REPEAT = 7


def client_frames(count: int) -> bytes:
    client = FrameProtocol(client=True, extensions=[])
    return b"".join(client.send_data(bytes(range(i, i + 32)), fin=True) for i in range(count))


def per_message(fn, messages_per_call: int) -> float:
    times = timeit.repeat(fn, number=NUMBER, repeat=REPEAT)
    return statistics.median(times) / NUMBER / messages_per_call * 1e6


def main() -> None:
    for count in (1, 5):
        data = client_frames(count)

        parser = FrameParser(1 << 16)
        assert len(parser.receive(data)) == count

        def ours(parser=parser, data=data):
            parser.receive(data)

        theirs_protocol = FrameProtocol(client=False, extensions=[])

        def theirs(protocol=theirs_protocol, data=data):
            protocol.receive_bytes(data)
            for _ in protocol.received_frames():
                pass

        theirs()
        label = f"{count} x 32-byte frame{'s' if count > 1 else ''} per call"
        print(f"FrameParser.receive           {label}: {per_message(ours, count):6.2f} us/message")
        print(f"wsproto FrameProtocol          {label}: {per_message(theirs, count):6.2f} us/message")


if __name__ == "__main__":
    main()
