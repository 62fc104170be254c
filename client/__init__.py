"""tickroom's Python client: ``from tickroom.client import connect``.

See tickroom.client.connecting for ``connect()`` and ``rejoin()``,
tickroom.client.connection for ``Client``; tickroom.protocol.client_session
holds the sans-IO protocol state it shares with the load-test bots.
"""

from tickroom.client.connecting import connect, rejoin
from tickroom.client.connection import Client, ClientClosed, Desynced, JoinFailed

__all__ = ["Client", "ClientClosed", "Desynced", "JoinFailed", "connect", "rejoin"]
