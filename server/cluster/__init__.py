"""Rooms that outlive their node (optional: ``--redis-url``).

``store`` holds the storage interface and its in-memory and Redis versions;
``failover`` keeps each room's lease and checkpoints (``RoomLeases``, the
registry's hosting) and recovers the rooms of dead nodes (``Failover``);
``checkpoint`` turns a room into bytes and back; ``placement`` sends a new
room to the node with the most free capacity; ``startup`` builds all of it
from a URL.
"""
