"""The room id of the running task, for log lines.

The registry sets it in each room's task and a connection in its own task
once it joined a room; trio gives each task its own copy of the context, so
nothing has to pass the id to every log call. It lives here, with the rooms
that set it, so that rooms/ imports nothing of ops/: tickroom.server.ops.logs
reads it.
"""

from __future__ import annotations

from contextvars import ContextVar

ROOM_ID: ContextVar[str | None] = ContextVar("tickroom_room_id", default=None)
