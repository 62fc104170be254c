"""Where room state survives its node: checkpoints, input logs, room leases
and the node registry. ``base`` holds the interface, ``memory`` the embedded
single-process store, ``redis`` the shared one (with ``redis_scripts``, its fenced Lua
scripts and their pipelined runner, the only code importing redis;
``redis_url`` parses its URLs)."""

from tickroom.server.cluster.store.base import Lease, NodeInfo, Store, StoreUnavailable

__all__ = ["Lease", "NodeInfo", "Store", "StoreUnavailable"]
