"""tickroom's Python client: ``from client import connect``.

See client.connection for the API; protocol.client_session holds the
sans-IO protocol state it shares with the load-test bots.
"""

from .connection import Client, ClientClosed, Desynced, JoinFailed, connect, rejoin

__all__ = ["Client", "ClientClosed", "Desynced", "JoinFailed", "connect", "rejoin"]
