"""Run the control API with hypercorn's trio worker.

hypercorn's ``serve`` has the shape of our services: ``task_status.started``
once bound (with the bound addresses, so port 0 works), and a
``shutdown_trigger`` for a graceful stop that lets requests in flight end.
"""

from __future__ import annotations

import logging

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

log = logging.getLogger("tickroom.server.control")

GRACEFUL_TIMEOUT_S = 2.0  # requests in flight when the API stops
MAX_BODY_BYTES = 64 * 2**10


async def serve_control_api(
    app, host: str, port: int, stop: trio.Event, *, task_status=trio.TASK_STATUS_IGNORED
) -> None:
    """Serve ``app`` on ``host:port`` (0: any free port) until ``stop`` is set.

    ``task_status.started`` gets the base URL (``http://HOST:PORT``).
    """
    config = Config()
    host = host or "0.0.0.0"  # noqa: S104 - "" means every interface, as for the game port; exposure is checked by check_exposure  # nosec B104
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("tickroom.server.control.hypercorn")
    config.graceful_timeout = GRACEFUL_TIMEOUT_S
    config.wsgi_max_body_size = MAX_BODY_BYTES
    config.include_server_header = False

    async def started_serving(*, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await serve(app, config, shutdown_trigger=stop.wait, task_status=task_status)

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(started_serving)
        url = binds[0]
        log.info("control API listening on %s", url)
        task_status.started(url)
