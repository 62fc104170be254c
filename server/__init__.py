"""One tickroom node: trio, in subpackages by concern (docs/architecture.md).

The hot path (read, validate, simulate, encode, send) is in two of them:

    transport/   sockets to messages: accept and admission, the WebSocket
                 handshake, frames and close, TLS, the per-client outbox
    rooms/       the registry and the room task: players, inputs, the tick
                 clock, snapshots and deltas; placement and admission

Around it, each optional or replaceable:

    cluster/     --redis-url: the store, leases, checkpoints, failover
    ops/         metrics, the load line, logs, Sentry, Agones
    control/     --control-port: the HTTP control API and the demo page
    cli/         tickroom serve / status, --workers

``node.py`` is the composition root (GameServer: it builds the parts and
sets the order they stop in), ``config.py`` the node's configuration.
"""
