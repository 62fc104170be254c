"""The cluster placement's choice of node (the end-to-end test with two
real nodes is tests/integration/test_placement.py)."""

from tickroom.server.cluster.placement import free_capacity, ranked
from tickroom.server.cluster.store.base import NodeInfo


def test_nodes_rank_by_free_capacity_then_players_then_id():
    nodes = [
        NodeInfo("c", "ws://c", 4, rooms=1, players=9),  # 3 free
        NodeInfo("b", "ws://b", 4, rooms=1, players=2),  # 3 free, fewer players
        NodeInfo("a", "ws://a", 4, rooms=1, players=2),  # 3 free, same players: id
        NodeInfo("d", "ws://d", 8, rooms=2),  # 6 free
        NodeInfo("e", "ws://e", 2, rooms=2),  # full
        NodeInfo("f", "ws://f", 9, draining=True),  # draining: no room
    ]
    assert [n.node_id for n in ranked(nodes)] == ["d", "a", "b", "c"]
    assert free_capacity(NodeInfo("g", "ws://g", 2, rooms=5)) == 0
    assert ranked([]) == []
