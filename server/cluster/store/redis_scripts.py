"""The Redis store's Lua scripts and their pipelined runner.

Every write that must be fenced (docs/operations.md, "Failover") is one Lua
script, so the check of the room's epoch (and of the lease's holder) and the
write are one atomic step on the Redis server: a node presumed dead can never
overwrite the new owner's state. The key layout they work on is described in
tickroom.server.cluster.store.redis; every key of one room shares its hash
tag, so each script touches one Cluster slot.

``FencedScripts`` registers them on a sync redis-py client (one Redis, a
Sentinel master, a Cluster) and runs many in one pipelined round trip,
loading them again on a master that lost them (a restart or a promotion).
Its methods block: the store calls them in worker threads.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions

# Every fenced script starts the same way: the caller's epoch must be the room's.
_FENCE = "if tonumber(redis.call('GET', KEYS[1]) or '0') ~= tonumber(ARGV[1]) then return 0 end\n"
# And the writer's (KEYS[2]: the lease, ARGV[2]: the writer's node id, '' for
# the epoch alone): a live lease naming another node refuses the write even
# at the same epoch (a promotion that lost a claim's INCR hands that epoch
# number out again; the first holder's writes must not land for TTL/3).
_OWNER_FENCE = (
    _FENCE
    + """
if ARGV[2] ~= '' then
  local holder = redis.call('GET', KEYS[2])
  if holder and holder ~= ARGV[1] .. '|' .. ARGV[2] then return 0 end
end
"""
)

# KEYS: epoch, lease. ARGV: node, ttl_ms, epoch_keep_s.
_CLAIM = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local e = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], e .. '|' .. ARGV[1], 'PX', ARGV[2])
return e
"""
# KEYS: epoch, lease. ARGV: epoch, node, ttl_ms, epoch_keep_s.
# A live lease naming another node with the same epoch refuses too: after a
# promotion that lost a claim's INCR, the next claim hands out that epoch
# number again, and the first holder must not keep the room.
_RENEW = (
    _FENCE
    + """
local held = redis.call('GET', KEYS[2])
if held and held ~= ARGV[1] .. '|' .. ARGV[2] then return 0 end
redis.call('SET', KEYS[2], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""
)
# KEYS: epoch, lease. ARGV: epoch, node.
_RELEASE = _OWNER_FENCE + "redis.call('DEL', KEYS[2])\nreturn 1\n"
# KEYS: epoch, lease, ckpt, log. ARGV: epoch, node, tick, data.
_CHECKPOINT = (
    _OWNER_FENCE
    + """
redis.call('HSET', KEYS[3], 'epoch', ARGV[1], 'tick', ARGV[3], 'data', ARGV[4])
-- Every entry in the log is at or before this tick (the writer logs a tick only
-- after the checkpoint before it): drop the stream, which also resets its last
-- id, so a new owner's entries are accepted after an old owner's hole.
redis.call('DEL', KEYS[4])
return 1
"""
)
# KEYS: epoch, lease, log. ARGV: epoch, node, then tick, data pairs.
_APPEND = (
    _OWNER_FENCE
    + """
for i = 3, #ARGV, 2 do
  redis.call('XADD', KEYS[3], ARGV[i] .. '-1', 'd', ARGV[i + 1])
end
return 1
"""
)
# KEYS: epoch, lease, ckpt, log. ARGV: epoch, node.
_FORGET = _OWNER_FENCE + "redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])\nreturn 1\n"


ScriptCall = tuple[str, list[str], list[Any]]  # (script name, keys, args)

SCRIPTS: dict[str, str] = {
    "claim": _CLAIM,
    "renew": _RENEW,
    "release": _RELEASE,
    "checkpoint": _CHECKPOINT,
    "append": _APPEND,
    "forget": _FORGET,
}


class FencedScripts:
    """The scripts of SCRIPTS registered on ``client`` (a sync redis-py
    client); calls block, so the caller runs them in a worker thread."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._scripts = {name: client.register_script(src) for name, src in SCRIPTS.items()}

    def script(self, name: str) -> Any:
        """The redis-py Script ``name``: called with (keys, args), it runs
        EVALSHA and loads the script first where the server lacks it."""
        return self._scripts[name]

    def run_pipelined(self, calls: list[ScriptCall]) -> list[Any]:
        """Run scripts (name, keys, args) in one pipelined round trip (on a
        Cluster, one per master involved), each reply in order, errors as
        values. Plain EVALSHA: redis-py's cluster pipeline refuses Script
        objects. Scripts a master does not have (a restarted or promoted
        one) are loaded and those calls run again."""
        if not calls:
            return []

        def run(batch: list[ScriptCall]) -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for name, keys, args in batch:
                pipe.execute_command("EVALSHA", self._scripts[name].sha, len(keys), *keys, *args)
            return list(pipe.execute(raise_on_error=False))

        replies = run(calls)
        missing = [i for i, r in enumerate(replies) if isinstance(r, redis.exceptions.NoScriptError)]
        if missing:
            for script in self._scripts.values():
                self._client.script_load(script.script)  # a Cluster loads it on every master
            for i, reply in zip(missing, run([calls[i] for i in missing]), strict=True):
                replies[i] = reply
        return replies
