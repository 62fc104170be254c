"""Error reporting to Sentry: initialisation and per-event tags.

The fences (tickroom.server.rooms.registry for rooms, tickroom.server.transport.connection for connections)
report through ``log.exception``; Sentry's logging integration turns those
records into events. ``tagged()`` puts the room id and tick on the event.
Without ``init()`` (no DSN) every call here is a cheap no-op.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import sentry_sdk

# Keys never sent to Sentry even if a record or frame holds them.
_SECRET_KEYS = ("api_key", "ticket_secret", "sentry_dsn", "authorization", "ticket", "session")


def init(dsn: str, *, environment: str, release: str, node_id: str) -> None:
    """Start reporting: ERROR log records become events, INFO ones breadcrumbs."""
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        include_local_variables=False,  # locals hold tickets, session tokens and keys
        auto_enabling_integrations=False,  # no web framework here; probing them costs a second at start
        integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
        before_send=_scrub,
    )
    sentry_sdk.set_tag("node_id", node_id)


@contextlib.contextmanager
def tagged(**tags: Any) -> Iterator[None]:
    """Events reported inside get these tags (room_id, tick, ...)."""
    with sentry_sdk.new_scope() as scope:
        for key, value in tags.items():
            scope.set_tag(key, str(value))
        yield


def _scrub(event: dict, hint: dict) -> dict:
    extra = event.get("extra")
    if isinstance(extra, dict):
        for key in list(extra):
            if any(secret in key.lower() for secret in _SECRET_KEYS):
                extra[key] = "[scrubbed]"
    return event
