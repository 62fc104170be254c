"""tickroom.server.ops.logs: JSON lines with the node id, and the room id of the task."""

from __future__ import annotations

import json
import logging

import trio

from tickroom.server.ops import logs


def render(record_args: dict, node_id: str = "node-1") -> dict:
    record = logging.makeLogRecord(record_args)
    logs.ContextFilter(node_id).filter(record)
    return json.loads(logs.JSONFormatter().format(record))


def test_a_line_is_one_json_object_with_the_node_id() -> None:
    line = render({"name": "tickroom.server.node", "levelname": "INFO", "msg": "hello %s", "args": ("world",)})
    assert line["msg"] == "hello world" and line["node_id"] == "node-1" and line["logger"] == "tickroom.server.node"
    assert line["ts"].endswith("Z") and "room_id" not in line


async def test_each_task_logs_its_own_room_id() -> None:
    seen = {}

    async def room_task(room_id: str) -> None:
        logs.ROOM_ID.set(room_id)
        await trio.sleep(0)
        seen[room_id] = render({"msg": "tick"})["room_id"]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(room_task, "a")
        nursery.start_soon(room_task, "b")
    assert seen == {"a": "a", "b": "b"}
    assert logs.ROOM_ID.get() is None  # the parent task is untouched


def test_exceptions_and_extras_are_fields() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        line = render({"msg": "failed", "exc_info": sys.exc_info(), "room_id": "r9", "peer": "1.2.3.4:5"})
    assert line["room_id"] == "r9" and line["peer"] == "1.2.3.4:5" and "ValueError: boom" in line["exc"]
