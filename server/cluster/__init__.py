"""Rooms that outlive their node (optional: ``--redis-url``).

``store`` holds the storage interface and its in-memory and Redis versions
(one Redis, a Sentinel group or a Cluster: ``store/redis_url.py``);
``leases`` keeps each hosted room's lease and writes its checkpoints and
input log (``RoomLeases``, the registry's hosting); ``failover`` recovers
the rooms of dead nodes (``Failover``); ``checkpoint`` turns a room into
bytes and back; ``durable_acks`` holds snapshots until the inputs they
acknowledge are stored (``--durable-acks``); ``placement`` sends a new room
to the node with the most free capacity and ``idempotency`` keeps
allocation keys cluster-wide; ``stats`` counts what the failover does for
the metrics; ``redaction`` hides secrets in store URLs; ``startup`` builds
all of it from a URL.
"""
