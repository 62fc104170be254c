"""Rooms, on the hot path: knows nothing of sockets, Redis, HTTP or metrics.

``registry`` creates, finds and closes rooms (each one task in its nursery)
and asks a ``RoomHosting`` where rooms live; ``room`` is the tick loop
(inputs, step, snapshots, deltas) over the ``ClientLink`` interface in
``link``; ``players``, ``input_batch``, ``snapshots`` and ``tick_clock`` are
its parts; ``placement`` says where a new room goes, ``admission`` who may
join (join tickets); ``log_context`` carries the room id to log lines.
"""
