"""Error reporting to Sentry: initialisation and per-event tags.

The fences (tickroom.server.rooms.registry for rooms,
tickroom.server.transport.connection for connections) report through ``log.exception``; Sentry's logging integration turns those
records into events. The room id, tick and game of an event come from its
log record (``extra={"room_id": ..., "tick": ...}``, else the task's room id
from tickroom.server.rooms.log_context), read in ``before_send``, so the
reporting code needs nothing of Sentry. Without ``init()`` (no DSN) nothing
here runs.
"""

from __future__ import annotations

import logging
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.types import Event

from tickroom.server.rooms.log_context import ROOM_ID

# Attributes of a log record that become tags of its event.
RECORD_TAGS = ("room_id", "tick", "game")
# Keys never sent to Sentry even if a record or frame holds them.
_SECRET_KEYS = ("api_key", "ticket_secret", "sentry_dsn", "authorization", "ticket", "session")


def init(dsn: str, *, environment: str, release: str, node_id: str) -> None:
    """Start reporting: ERROR log records become events, INFO ones breadcrumbs."""
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        include_local_variables=False,  # locals hold tickets, session tokens and keys
        auto_enabling_integrations=False,  # no web framework here; probing them costs a second at start
        integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
        before_send=_before_send,
    )
    sentry_sdk.set_tag("node_id", node_id)


def _before_send(event: Event, hint: dict[str, Any]) -> Event:
    _tag_from_record(event, hint)
    return _scrub(event, hint)


def _tag_from_record(event: Event, hint: dict[str, Any]) -> None:
    """Tags from the log record an event came from (room_id, tick, game),
    unless the event has them already."""
    record = hint.get("log_record")
    tags = event.setdefault("tags", {})
    for key in RECORD_TAGS:
        value = getattr(record, key, None) if record is not None else None
        if value is None and key == "room_id":
            value = ROOM_ID.get()  # before_send runs in the reporting task
        if value is not None:
            tags.setdefault(key, str(value))


def _scrub(event: Event, hint: dict[str, Any]) -> Event:
    extra = event.get("extra")
    if isinstance(extra, dict):
        for key in list(extra):
            if any(secret in key.lower() for secret in _SECRET_KEYS):
                extra[key] = "[scrubbed]"
    return event
