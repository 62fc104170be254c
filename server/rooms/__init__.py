"""Rooms, on the hot path: knows nothing of sockets, Redis, HTTP or metrics.

``registry`` creates, finds and closes rooms (each one task in its nursery)
and asks a ``RoomHosting`` where rooms live; ``room`` is the tick loop
(inputs, step, snapshots, deltas) over the ``ClientLink`` interface in
``link``; ``room_types``, ``players``, ``input_rows_batch``, ``snapshots``,
``broadcast`` (each client's snapshot sent) and ``tick_clock`` are its
parts, and ``seating`` admits a joiner and builds its welcome. The game's side: ``game_catalog`` (the games a
node runs), ``game_hooks`` (its optional lifecycle hooks and their failure
policy), ``game_requests`` (what it asks of its room), ``room_signals``
(signals from the control API). Around them: ``placement`` says where a new
room goes, ``admission`` who may join (join tickets), ``room_quota`` how
many rooms one address may create; ``log_context`` carries the room id to
log lines.
"""
