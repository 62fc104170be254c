"""tickroom.server.transport.urls: one bind host -> URL rule for every URL a node hands out."""

from __future__ import annotations

import socket

import pytest

from tickroom.server.transport.urls import reachable_url, url_for


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "ws://127.0.0.1:7350"),
        ("game.example.org", "ws://game.example.org:7350"),
        ("::1", "ws://[::1]:7350"),
        ("2001:db8::7", "ws://[2001:db8::7]:7350"),
        ("0.0.0.0", "ws://box-1:7350"),  # noqa: S104 - a wildcard bind host, not a bind
        ("::", "ws://box-1:7350"),
        ("", "ws://box-1:7350"),
    ],
)
def test_a_bind_host_becomes_a_reachable_url(host: str, url: str) -> None:
    assert url_for("ws", host, 7350, hostname="box-1") == url


def test_a_wildcard_is_this_machines_name_by_default() -> None:
    assert url_for("ws", "0.0.0.0", 1) == f"ws://{socket.gethostname()}:1"  # noqa: S104


@pytest.mark.parametrize(
    ("url", "reachable"),
    [
        ("http://0.0.0.0:7351", "http://box-1:7351"),
        ("http://[::]:7351", "http://box-1:7351"),
        ("http://127.0.0.1:7351", "http://127.0.0.1:7351"),
        ("http://[::1]:7351", "http://[::1]:7351"),
        ("https://0.0.0.0:7351/base", "https://box-1:7351/base"),
    ],
)
def test_a_bound_url_with_a_wildcard_names_this_machine(url: str, reachable: str) -> None:
    assert reachable_url(url, hostname="box-1") == reachable
