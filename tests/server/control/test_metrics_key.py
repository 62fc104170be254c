"""--metrics-need-key (issue 16, item 10): /metrics lists room ids, which is
all a client needs to join a client-created room; with the flag it answers
only with the API key. /healthz and /readyz stay public (load balancers)."""

from __future__ import annotations

import httpx

from .conftest import AUTH, DEADLINE_S, control_server


async def test_metrics_can_be_put_behind_the_key() -> None:
    async with control_server(metrics_need_key=True) as server:
        async with httpx.AsyncClient(base_url=server.control_url, timeout=DEADLINE_S) as client:
            server.registry.create("secret-room-id")
            refused = await client.get("/metrics")
            assert refused.status_code == 401
            assert "secret-room-id" not in refused.text
            assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
            scraped = await client.get("/metrics", headers=AUTH)
            assert scraped.status_code == 200 and "tickroom_rooms" in scraped.text
            for path in ("/healthz", "/readyz"):
                assert (await client.get(path)).status_code == 200, path


async def test_by_default_metrics_need_no_key() -> None:
    async with control_server() as server:
        async with httpx.AsyncClient(base_url=server.control_url, timeout=DEADLINE_S) as client:
            assert (await client.get("/metrics")).status_code == 200
