"""tickroom's Python client: ``from client import connect``.

See tickroom.client.connection for the API; tickroom.protocol.client_session holds the
sans-IO protocol state it shares with the load-test bots.
"""

from tickroom.client.connection import Client, ClientClosed, Desynced, JoinFailed, connect, rejoin

__all__ = ["Client", "ClientClosed", "Desynced", "JoinFailed", "connect", "rejoin"]
