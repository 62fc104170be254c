"""Where room state survives its node: checkpoints, input logs, room leases
and the node registry. ``base`` holds the interface, ``memory`` the embedded
single-process store, ``redis`` the shared one (the only module importing
redis)."""

from tickroom.server.cluster.store.base import Lease, NodeInfo, Store, StoreUnavailable

__all__ = ["Lease", "NodeInfo", "Store", "StoreUnavailable"]
