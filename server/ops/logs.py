"""Log setup: human-readable lines or JSON lines (``--log-format json``).

Every JSON line carries the node id, and lines logged by a room's task or by
a connection that joined a room carry the room id: the registry and the
connection set ``ROOM_ID`` (tickroom.server.rooms.log_context) in their own
task, and trio gives each task its own copy of the context, so nothing has to
pass the id to every log call.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from tickroom.server.rooms.log_context import ROOM_ID

__all__ = ["ROOM_ID", "ContextFilter", "JSONFormatter", "setup"]

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class ContextFilter(logging.Filter):
    """Puts ``node_id`` and ``room_id`` on every record."""

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.node_id = self.node_id
        if getattr(record, "room_id", None) is None:
            record.room_id = ROOM_ID.get()
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, node_id, room_id
    (when known), exc (a traceback, when any), and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str | int | float | bool] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and value is not None:
                line[key] = value if isinstance(value, (str, int, float, bool)) else repr(value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def setup(level: str, fmt: str, node_id: str) -> None:
    """Configure the root logger to stderr in ``fmt`` ("text" or "json")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter(node_id))
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
