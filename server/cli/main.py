"""The ``tickroom`` command: ``tickroom serve``, ``tickroom status``,
``tickroom loadtest``.

Every flag has an environment variable, TICKROOM_ plus the flag's name in
capitals (--tick-rate -> TICKROOM_TICK_RATE); a flag given on the command
line wins over the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import fields
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn

import trio

from tickroom.server.cli.status import add_arguments as add_status_arguments
from tickroom.server.cli.status import run as run_status
from tickroom.server.cli.workers import PORT_STEP, port_clash, stop_when_orphaned, supervise, worker_count
from tickroom.server.cluster.startup import check_store_url
from tickroom.server.config import ServerConfig
from tickroom.server.control.auth import InsecureControlAPI, check_exposure
from tickroom.server.control.serve import check_tls_files
from tickroom.server.node import GameServer
from tickroom.server.ops import logs, sentry
from tickroom.server.rooms.game_catalog import GameCatalog, GameLoadError

_DEFAULTS = ServerConfig()

# flag -> (config field, type, help); the type is a converter, or "bool" or
# "file" for the converters below.
_SERVE_FLAGS: list[tuple[str, str, Callable[[str], Any] | str, str]] = [
    ("--host", "host", str, "address to listen on"),
    ("--port", "port", int, "WebSocket game port (0: any free port)"),
    ("--tick-rate", "tick_rate", int, "room ticks per second"),
    ("--max-players", "max_players", int, "players per room"),
    ("--max-rooms", "max_rooms", int, "rooms per node"),
    (
        "--max-rooms-per-address",
        "max_rooms_per_address",
        int,
        "rooms that clients of one source address created and that still run (0: no limit)",
    ),
    ("--unjoined-close", "unjoined_close_s", float, "seconds a client-created room waits for its first player"),
    (
        "--game",
        "default_game",
        str,
        "game of rooms created without naming one: a name (built in, or an installed "
        "'tickroom.games' entry point) or module.path:Class",
    ),
    (
        "--allow-client-rooms",
        "allow_client_rooms",
        "bool",
        "let clients create rooms in 'join', by name or by quick match (on|off)",
    ),
    ("--idle-close", "idle_close_s", float, "seconds an empty room lives"),
    ("--ack-timeout", "ack_timeout_s", float, "seconds without an acknowledged snapshot before a client is dropped"),
    ("--rejoin-grace", "rejoin_grace_s", float, "seconds a dropped player's avatar waits for a rejoin"),
    ("--max-message-size", "max_message_bytes", int, "largest client message, bytes"),
    ("--handshake-timeout", "handshake_timeout_s", float, "seconds from connect to a valid 'join'"),
    ("--idle-timeout", "idle_timeout_s", float, "seconds without any client message before closing"),
    ("--rate-per-tick", "rate_per_tick", float, "client messages allowed per tick on average (1 s burst)"),
    ("--strike-limit", "strike_limit", int, "recoverable client errors in a burst before closing"),
    ("--max-connections", "max_connections", int, "client connections per node (0: no limit)"),
    ("--max-connections-per-ip", "max_connections_per_ip", int, "client connections per source address (0: no limit)"),
    (
        "--max-node-players",
        "max_node_players",
        int,
        "players per node: new ones are refused (4203) past it (0: the capacity measured from CPU and tick lag)",
    ),
    (
        "--step-together",
        "step_together",
        "bool",
        "step the rooms of a game due at the same moment by one batched call of the game (on|off; off: "
        "room by room, the same worlds, for A/B measurements)",
    ),
    ("--capacity-cpu", "capacity_cpu", float, "CPU share of the allowance (a core or its quota) that refuses players"),
    ("--capacity-tick-lag", "capacity_tick_lag_s", float, "seconds of tick lag at which new players are refused"),
    ("--allowed-origins", "allowed_origins", str, "comma-separated browser Origins allowed to connect (empty: all)"),
    ("--tls-cert", "tls_cert", str, "PEM certificate chain: serve wss:// (with --tls-key)"),
    ("--tls-key", "tls_key", str, "PEM private key of --tls-cert"),
    ("--control-tls-cert", "control_tls_cert", str, "PEM certificate chain: serve the control API on https://"),
    ("--control-tls-key", "control_tls_key", str, "PEM private key of --control-tls-cert"),
    ("--graceful-timeout", "graceful_timeout_s", float, "seconds the shutdown may take"),
    ("--stats-interval", "stats_interval_s", float, "seconds between load summaries in the log (0: never)"),
    ("--log-level", "log_level", str, "DEBUG, INFO, WARNING or ERROR"),
    ("--log-format", "log_format", str, "text (human-readable) or json (one object a line, with node and room ids)"),
    ("--sentry-dsn", "sentry_dsn", str, "report errors to this Sentry DSN (also read from SENTRY_DSN)"),
    ("--environment", "environment", str, "Sentry environment"),
    ("--release", "release", str, "Sentry release (default tickroom@<version>)"),
    ("--node-id", "node_id", str, "this node's id in the control API and in Sentry (default: the host name)"),
    ("--public-url", "public_url", str, "ws:// URL clients reach this node at (default: from --host and --port)"),
    ("--control-port", "control_port", int, "control API port (0: any free port)"),
    ("--control-host", "control_host", str, "control API address (default: --host with an API key, else 127.0.0.1)"),
    ("--api-key", "api_key", str, "bearer key of the control API (prefer the env variable or --api-key-file)"),
    ("--api-key-file", "api_key", "file", "read the control API key from this file"),
    (
        "--metrics-need-key",
        "metrics_need_key",
        "bool",
        "serve /metrics (which lists room ids) only with the API key (on|off)",
    ),
    (
        "--ticket-secret",
        "ticket_secret",
        str,
        "HMAC secret of join tickets; joins then need one (prefer the env variable or --ticket-secret-file)",
    ),
    ("--ticket-secret-file", "ticket_secret", "file", "read the join-ticket secret from this file"),
    ("--sentry-dsn-file", "sentry_dsn_file", str, "read the Sentry DSN from this file"),
    (
        "--redis-url",
        "redis_url",
        str,
        "share rooms with other nodes through this Redis (redis://, rediss://, unix://) or Sentinel group "
        "(redis+sentinel://host:port[,host:port]/service_name[/db]) or Cluster (redis+cluster://host:port[,host:port]); "
        "enables failover",
    ),
    ("--lease-ttl", "lease_ttl_s", float, "seconds before a silent node's rooms move to another node"),
    ("--checkpoint-interval", "checkpoint_interval", int, "ticks between room checkpoints (0: one second's worth)"),
    (
        "--durable-acks",
        "durable_acks",
        "bool",
        "a snapshot acknowledges an input only once its log entry is in Redis: a node's SIGKILL loses no "
        "acknowledged input, for about one Redis round trip more of latency (needs --redis-url; on|off, alone: on)",
    ),
]

# Defaults of the command that differ from ServerConfig's (a library default
# binds nothing extra; the product serves its control API).
_CLI_DEFAULTS = {"control_port": 7351}
# How ``tickroom loadtest`` tells the load tester its name (for its --help).
LOADTEST_PROG_ENV = "TICKROOM_LOADTEST_PROG"
# Never shown in --help or logs: they are credentials.
_SECRETS = {"api_key", "ticket_secret", "sentry_dsn"}


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected on/off, got {text!r}")


def _read_secret_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            value = file.read().strip()
    except OSError as exc:
        # The path, not the content, in the message.
        raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror}") from None
    if not value:
        raise argparse.ArgumentTypeError(f"{path} is empty")
    return value


_CONVERTERS: dict[str, Callable[[str], Any]] = {"bool": _parse_bool, "file": _read_secret_file}
_METAVARS = {"bool": "ON|OFF", "file": "PATH"}


def _env_name(flag: str) -> str:
    return "TICKROOM_" + flag.lstrip("-").replace("-", "_").upper()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tickroom", description="tickroom: authoritative multiplayer game server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a game server node")
    # Listed for --help only: main() hands everything after "loadtest" to
    # the load tester's own parser (loadtest/cli.py).
    sub.add_parser(
        "loadtest",
        help="run headless bots against a node or the control API (tickroom loadtest --help)",
        add_help=False,
    )
    _add_workers_flag(serve)
    add_status_arguments(
        sub.add_parser("status", help="nodes, rooms, players and tick times of a cluster, from its Redis")
    )
    for flag, name, kind, help_text in _SERVE_FLAGS:
        convert = _CONVERTERS[kind] if isinstance(kind, str) else kind
        env = _env_name(flag)
        default = _CLI_DEFAULTS.get(name, getattr(_DEFAULTS, name))
        if kind == "file" and env not in os.environ:
            # Both flags write the same field: the file flag must not reset
            # what --api-key or its env variable set.
            default = argparse.SUPPRESS
        if env in os.environ:
            try:
                default = convert(os.environ[env])
            except (ValueError, argparse.ArgumentTypeError) as exc:
                parser.error(f"{env}: {exc}")
        serve.add_argument(
            flag,
            dest=name,
            type=convert,
            default=default,
            # A bool flag alone turns it on (``--durable-acks``); with a value, as given.
            nargs="?" if kind == "bool" else None,
            const=True if kind == "bool" else None,
            metavar=_METAVARS.get(kind) if isinstance(kind, str) else None,
            help=f"{help_text} [env {env}" + ("]" if name in _SECRETS else f"; default {_show_default(name)}]"),
        )
    return parser


def _add_workers_flag(serve: argparse.ArgumentParser) -> None:
    def convert(text: str) -> int:
        try:
            return worker_count(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a count or auto, got {text!r}") from None

    env = _env_name("--workers")
    default = 1
    if env in os.environ:
        try:
            default = convert(os.environ[env])
        except argparse.ArgumentTypeError as exc:
            serve.error(f"{env}: {exc}")
    serve.add_argument(
        "--workers",
        type=convert,
        default=default,
        metavar="N|auto",
        help="node processes on this machine, sharing --redis-url (0 or auto: one per CPU); worker i serves on "
        f"--port + {PORT_STEP}i and --control-port + {PORT_STEP}i (defaults: game ports 7350, 7352, ..., "
        f"control ports 7351, 7353, ...) [env {env}; default 1]",
    )


def _show_default(name: str) -> object:
    if name == "allow_client_rooms":
        return "on, off with a ticket secret"
    return _CLI_DEFAULTS.get(name, getattr(_DEFAULTS, name))


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    names = {f.name for f in fields(ServerConfig)}
    return ServerConfig(**{k: v for k, v in vars(args).items() if k in names})


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["loadtest"]:
        _exec_loadtest(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "status":
        return run_status(args)
    if args.command == "serve":
        config = config_from_args(args)
        if config.log_format not in ("text", "json"):
            print(f"tickroom: error: --log-format must be text or json, not {config.log_format!r}", file=sys.stderr)
            return 2
        if config.sentry_dsn is None and os.environ.get("SENTRY_DSN"):
            config = dataclasses.replace(config, sentry_dsn=os.environ["SENTRY_DSN"])
        if config.control_port is not None:
            try:
                check_exposure(config.control_bind_host(), config.api_key)
            except InsecureControlAPI as exc:
                print(f"tickroom: error: {exc}", file=sys.stderr)
                return 2
        try:
            config.capacity()
        except ValueError as exc:
            print(f"tickroom: error: {exc}", file=sys.stderr)
            return 2
        if config.redis_url:
            try:
                check_store_url(config.redis_url)
            except ValueError as exc:
                print(f"tickroom: error: {exc}", file=sys.stderr)
                return 2
        try:
            # Resolved before anything starts (and again in each worker, from
            # the same flags): an unknown or broken game is exit 2, never a
            # server that refuses every join.
            games = GameCatalog.discover(config.default_game)
        except GameLoadError as exc:
            print(f"tickroom: error: --game: {exc}", file=sys.stderr)
            return 2
        try:
            config.ssl_context  # noqa: B018 - load the certificate now: fail at start, not at the first client
        except (ValueError, OSError) as exc:
            parser.error(f"TLS: {exc}")
        try:
            check_tls_files(config.control_tls_cert, config.control_tls_key)
        except (ValueError, OSError) as exc:
            parser.error(f"control API TLS: {exc}")
        if config.durable_acks and not config.redis_url:
            print(
                "tickroom: error: --durable-acks needs --redis-url: inputs are made durable in Redis", file=sys.stderr
            )
            return 2
        if args.workers != 1:
            if not config.redis_url:
                print(
                    "tickroom: error: --workers needs --redis-url: the workers share their rooms through Redis",
                    file=sys.stderr,
                )
                return 2
            if config.public_url:
                print(
                    "tickroom: error: --public-url names one node; with --workers each worker derives its own",
                    file=sys.stderr,
                )
                return 2
            clash = port_clash(config, args.workers)
            if clash is not None:
                print(
                    f"tickroom: error: with --workers {args.workers}, two workers would both use port {clash}: "
                    f"worker i serves on --port + {PORT_STEP}i and --control-port + {PORT_STEP}i; "
                    "choose bases an odd number apart (the defaults are)",
                    file=sys.stderr,
                )
                return 2
            _setup_logging(config)
            return supervise(argv, config, args.workers)
        _setup_logging(config)
        trio.run(_serve_until_signal, config, games)
        return 0
    return 2


def _exec_loadtest(args: list[str]) -> NoReturn:
    """``tickroom loadtest ...``: become ``python -m tickroom.loadtest ...``
    (the same process: signals, stdio and the exit code are the load
    tester's). The server package imports nothing of the load tester, whose
    dependencies are an extra (tickroom[loadtest])."""
    env = {**os.environ, LOADTEST_PROG_ENV: "tickroom loadtest"}
    os.execve(sys.executable, [sys.executable, "-m", "tickroom.loadtest", *args], env)  # noqa: S606  # nosec B606 - our own interpreter and module, argv list, no shell


def _setup_logging(config: ServerConfig) -> None:
    logs.setup(config.log_level, config.log_format, config.node_id or socket.gethostname())
    log = logging.getLogger("tickroom")
    try:
        dsn = config.read_sentry_dsn()
    except OSError as exc:
        # strerror and the file name only: never the file's content.
        log.error("cannot read --sentry-dsn-file %s: %s; Sentry disabled", config.sentry_dsn_file, exc.strerror)
        return
    if dsn:
        try:
            release = config.release or f"tickroom@{version('tickroom')}"
        except PackageNotFoundError:  # running from a checkout
            release = "tickroom@unknown"
        # The logging integration turns log.exception in the room and
        # connection fences into Sentry events (tickroom.server.ops.sentry).
        try:
            sentry.init(
                dsn, environment=config.environment, release=release, node_id=config.node_id or socket.gethostname()
            )
        except Exception as exc:  # noqa: BLE001 - a bad DSN must not stop the server
            # The SDK's message may quote the DSN: log the type only.
            log.error("Sentry disabled: invalid DSN (%s)", type(exc).__name__)
        else:
            log.info("Sentry enabled")


async def _serve_until_signal(config: ServerConfig, games: GameCatalog) -> None:
    server = GameServer(config, games=games)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                log = logging.getLogger("tickroom")
                async for signum in signals:
                    if not server.stopping:
                        log.info("signal %s: stopping gracefully", signal.Signals(signum).name)
                        server.shutdown()
                    else:
                        # A second signal: the operator will not wait for the drain.
                        log.warning("signal %s again: stopping now", signal.Signals(signum).name)
                        nursery.cancel_scope.cancel()

            def stop_once() -> None:
                if not server.stopping:
                    server.shutdown()

            nursery.start_soon(stop_on_signal)
            nursery.start_soon(stop_when_orphaned, stop_once)
            await server.run()
            nursery.cancel_scope.cancel()
