"""Run the control API with hypercorn's trio worker.

hypercorn's ``serve`` has the shape of our services: ``task_status.started``
once bound (with the bound addresses, so port 0 works), and a
``shutdown_trigger`` for a graceful stop that lets requests in flight end.
With a certificate and key (``--control-tls-cert``/``--control-tls-key``)
hypercorn serves https:// (TLS 1.2 at least, HTTP/2 by ALPN).
"""

from __future__ import annotations

import logging

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from tickroom.server.transport.tls import load_server_context

log = logging.getLogger("tickroom.server.control")

GRACEFUL_TIMEOUT_S = 2.0  # requests in flight when the API stops
MAX_BODY_BYTES = 64 * 2**10


def check_tls_files(cert_file: str | None, key_file: str | None) -> None:
    """Load the control API's certificate and key once, so a bad pair stops
    the node at start rather than when the API binds. Raises ValueError
    when only one is given, OSError or ssl.SSLError when they are
    unreadable or do not match."""
    if not cert_file and not key_file:
        return
    if not (cert_file and key_file):
        raise ValueError("https on the control port needs both --control-tls-cert and --control-tls-key")
    load_server_context(cert_file, key_file)


async def serve_control_api(
    app,
    host: str,
    port: int,
    stop: trio.Event,
    *,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``host:port`` (0: any free port) until ``stop`` is set.

    ``tls_cert`` and ``tls_key`` (PEM files, both or neither): serve
    https:// instead of http://; ``check_tls_files`` says what is wrong with
    a pair. ``task_status.started`` gets the base URL
    (``http://HOST:PORT`` or ``https://HOST:PORT``).
    """
    check_tls_files(tls_cert, tls_key)
    config = Config()
    host = host or "0.0.0.0"  # noqa: S104 - "" means every interface, as for the game port; exposure is checked by check_exposure  # nosec B104
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("tickroom.server.control.hypercorn")
    config.graceful_timeout = GRACEFUL_TIMEOUT_S
    config.wsgi_max_body_size = MAX_BODY_BYTES
    config.include_server_header = False
    config.certfile, config.keyfile = tls_cert, tls_key  # both None: plain http

    async def started_serving(*, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await serve(app, config, shutdown_trigger=stop.wait, task_status=task_status)

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(started_serving)
        url = binds[0]
        log.info("control API listening on %s", url)
        task_status.started(url)
