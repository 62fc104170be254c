"""An in-process GameServer with its control API on free ports, and an
HTTP client for it (httpx on trio, through anyio)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio

from tickroom.server.config import ServerConfig
from tickroom.server.node import GameServer

API_KEY = "test-api-key"
TICKET_SECRET = "test-ticket-secret"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
DEADLINE_S = 5.0


@asynccontextmanager
async def control_server(**overrides) -> AsyncIterator[GameServer]:
    config = ServerConfig(
        **{
            "host": "127.0.0.1",
            "port": 0,
            "control_port": 0,
            "api_key": API_KEY,
            "ticket_secret": TICKET_SECRET,
            "stats_interval_s": 0,
            "graceful_timeout_s": 2.0,
            **overrides,
        }
    )
    server = GameServer(config)
    with trio.fail_after(DEADLINE_S * 4):  # the whole test, shutdown included
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            yield server
            server.shutdown()  # run() returns (and the nursery exits) once stopped


@pytest.fixture
async def server() -> AsyncIterator[GameServer]:
    async with control_server() as running:
        yield running


@pytest.fixture
async def http(server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.control_url, headers=AUTH, timeout=DEADLINE_S) as client:
        yield client


@pytest.fixture
async def anonymous(server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.control_url, timeout=DEADLINE_S) as client:
        yield client
