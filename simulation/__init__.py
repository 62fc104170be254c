"""Pure numpy simulation: the Game interface and the games that implement it.

Imports neither trio nor protocol and reads no clock: time is counted in ticks.
"""

from tickroom.simulation.game import Game, GameConfig, GameFull, InputBatch, JoinRejected, View
from tickroom.simulation.games import GAMES, get_game
from tickroom.simulation.room_requests import RoomRequests

__all__ = ["GAMES", "Game", "GameConfig", "GameFull", "InputBatch", "JoinRejected", "RoomRequests", "View", "get_game"]
