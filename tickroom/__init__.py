"""tickroom: an authoritative multiplayer game server on trio and numpy.

The public API, for game clients and game authors::

    from tickroom import connect, rejoin, Client, ClientClosed, JoinFailed   # the Python client
    from tickroom import Game, GameConfig, GameFull, InputBatch, View        # the game interface

The packages below are the map (docs/architecture.md draws it):

    tickroom.protocol     sans-IO wire format: messages, codec, validation, deltas,
                          tickets, sessions, WebSocket frames
    tickroom.simulation   pure numpy: the Game interface and the reference games
    tickroom.server       trio: the node, by concern (transport, rooms, cluster,
                          control, ops, cli)
    tickroom.client       the Python client
    tickroom.loadtest     headless bots, scenarios, report (plots: tickroom[loadtest])

Each folder of the repository (protocol/, simulation/, server/, client/,
loadtest/) is one of these packages: tickroom/ holds this file, a link to
each of them, and percentiles.py (the percentile rule they all report by).
"""

from tickroom.client import Client, ClientClosed, JoinFailed, connect, rejoin
from tickroom.simulation.game import Game, GameConfig, GameFull, InputBatch, JoinRejected, View, Visibility
from tickroom.simulation.room_requests import RoomRequests

__all__ = [
    "Client",
    "ClientClosed",
    "Game",
    "GameConfig",
    "GameFull",
    "JoinRejected",
    "InputBatch",
    "JoinFailed",
    "RoomRequests",
    "View",
    "Visibility",
    "connect",
    "rejoin",
]
