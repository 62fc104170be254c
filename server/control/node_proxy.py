"""The operator's calls on another node of the cluster, forwarded to that
node's control API (``/v1/nodes/{node_id}/...``, the console's view of
every node's rooms).

The browser talks to one node only, its own origin: the node it was served
by finds the target in the node registry (``NodeDirectory``, the live
heartbeats in Redis), and makes the call on the target's registered control
URL itself, with the cluster's shared API key. So the key never leaves for
another origin from the page, and the target answers as if asked directly;
its answer (status, JSON) is passed back as it is. What can go wrong on the
way has its own reason, so an operator tells "that node is gone" from "that
room is gone":

    node_not_found      404  no live heartbeat for that id (stopped, or dead
                             and its lease expired)
    node_no_control_api 502  the node registered no control URL
    node_unreachable    502  refused, reset, not HTTP, or an answer over
                             MAX_ANSWER_BYTES or not JSON
    node_refused_key    502  the node refused this node's API key (the
                             cluster's nodes must share one)
    node_timeout        504  no whole answer within FORWARD_TIMEOUT_S

Only fixed paths are forwarded (built from the route's validated
parameters, never from the request's path), the query string is re-encoded
from its parsed pairs, and redirects are never followed (a redirect would
carry the key to wherever it points).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import trio

from tickroom.server.cluster.store.base import NodeInfo
from tickroom.server.control.nodes import NodeDirectory

FORWARD_TIMEOUT_S = 5.0  # the whole forwarded call: connect, send, answer
MAX_ANSWER_BYTES = 4 * 2**20  # 4 MiB: a page of 500 rooms is about 250 KiB
_PASSED_HEADERS = ("retry-after",)  # of the target's answer, to the caller


class NodeCallFailed(Exception):
    """A forwarded call did not get the target's answer: ``status`` and
    ``reason`` for the caller (the table in this module's docstring)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class NodeAnswer:
    """The target node's answer, as it gave it."""

    status: int
    body: Any  # its JSON
    headers: list[tuple[bytes, bytes]]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is the answer, not a hop: the Authorization header stays here."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class NodeProxy:
    """Forwards control API calls to the nodes of ``nodes``, authenticated
    with ``api_key`` (None: without a key, which a keyed node refuses)."""

    def __init__(self, nodes: NodeDirectory, *, api_key: str | None, timeout_s: float = FORWARD_TIMEOUT_S) -> None:
        self.nodes = nodes
        self.api_key = api_key
        self.timeout_s = timeout_s

    async def find(self, node_id: str) -> NodeInfo:
        """The registry's entry of ``node_id``. Raises NodeCallFailed
        (node_not_found) when it has none; StoreUnavailable passes through."""
        for node in await self.nodes.nodes():
            if node.node_id == node_id:
                return node
        raise NodeCallFailed(404, "node_not_found", f"no live node {node_id!r} in the cluster's registry")

    async def call(
        self, node: NodeInfo, method: str, path_parts: tuple[str, ...], query: list[tuple[str, str]] | None = None
    ) -> NodeAnswer:
        """``method`` on ``node``'s control API at ``/`` + the parts (each
        percent-encoded), with ``query``. Raises NodeCallFailed when no
        answer comes back; cancelling abandons the worker thread, whose own
        socket timeout ends it."""
        if not node.control_url:
            raise NodeCallFailed(502, "node_no_control_api", f"node {node.node_id!r} registered no control API URL")
        base = node.control_url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise NodeCallFailed(502, "node_unreachable", f"node {node.node_id!r} has no HTTP control URL")
        url = base + "/" + "/".join(quote(part, safe="") for part in path_parts)
        if query:
            url += "?" + urlencode(query)
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = b"" if method == "POST" else None
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - the scheme is checked above  # nosec B310
        with trio.move_on_after(self.timeout_s) as scope:
            status, raw, answer_headers = await trio.to_thread.run_sync(
                _send, request, self.timeout_s, abandon_on_cancel=True
            )
        if scope.cancelled_caught:
            raise NodeCallFailed(504, "node_timeout", f"node {node.node_id!r} did not answer in {self.timeout_s:g} s")
        if status is None:
            raise NodeCallFailed(502, "node_unreachable", f"node {node.node_id!r} at {base}: {raw.decode()}")
        if status == 401:
            raise NodeCallFailed(
                502, "node_refused_key", f"node {node.node_id!r} refused this node's API key (the nodes must share one)"
            )
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            raise NodeCallFailed(
                502, "node_unreachable", f"node {node.node_id!r} answered {status} without JSON"
            ) from None
        return NodeAnswer(status, body, answer_headers)


def _send(request: urllib.request.Request, timeout_s: float) -> tuple[int | None, bytes, list[tuple[bytes, bytes]]]:
    """In a worker thread: (status, body, headers to pass on), or (None,
    what went wrong, []) when there is no answer to pass on."""
    try:
        response = _OPENER.open(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:  # 4xx/5xx (and 3xx, never followed): an answer all the same
        response = exc
    except (OSError, ValueError) as exc:  # refused, reset, timed out, not HTTP
        return None, str(exc).encode(), []
    try:
        with response:
            raw = response.read(MAX_ANSWER_BYTES + 1)
            headers = [
                (name.encode(), response.headers[name].encode())
                for name in _PASSED_HEADERS
                if response.headers.get(name)
            ]
            status = response.status if response.status is not None else response.code
    except OSError as exc:  # the connection broke mid-answer
        return None, str(exc).encode(), []
    if len(raw) > MAX_ANSWER_BYTES:
        return None, f"an answer over {MAX_ANSWER_BYTES} bytes".encode(), []
    return status, raw, headers
