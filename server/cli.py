"""The ``tickroom`` command: ``tickroom serve`` (and, later, more).

Every flag has an environment variable, TICKROOM_ plus the flag's name in
capitals (--tick-rate -> TICKROOM_TICK_RATE); a flag given on the command
line wins over the environment.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from dataclasses import fields

import trio

from .config import ServerConfig

_DEFAULTS = ServerConfig()

# flag -> (config field, type, help)
_SERVE_FLAGS = [
    ("--host", "host", str, "address to listen on"),
    ("--port", "port", int, "WebSocket game port (0: any free port)"),
    ("--tick-rate", "tick_rate", int, "room ticks per second"),
    ("--max-players", "max_players", int, "players per room"),
    ("--max-rooms", "max_rooms", int, "rooms per node"),
    ("--game", "default_game", str, "game of rooms created without naming one"),
    ("--allow-client-rooms", "allow_client_rooms", "bool", "let clients create rooms in 'join', by name or by quick match (on|off)"),
    ("--idle-close", "idle_close_s", float, "seconds an empty room lives"),
    ("--ack-timeout", "ack_timeout_s", float, "seconds without an acknowledged snapshot before a client is dropped"),
    ("--rejoin-grace", "rejoin_grace_s", float, "seconds a dropped player's avatar waits for a rejoin"),
    ("--max-message-size", "max_message_bytes", int, "largest client message, bytes"),
    ("--handshake-timeout", "handshake_timeout_s", float, "seconds from connect to a valid 'join'"),
    ("--idle-timeout", "idle_timeout_s", float, "seconds without any client message before closing"),
    ("--graceful-timeout", "graceful_timeout_s", float, "seconds the shutdown may take"),
    ("--stats-interval", "stats_interval_s", float, "seconds between load summaries in the log (0: never)"),
    ("--log-level", "log_level", str, "DEBUG, INFO, WARNING or ERROR"),
    ("--sentry-dsn", "sentry_dsn", str, "report errors to this Sentry DSN"),
    ("--redis-url", "redis_url", str, "share rooms with other nodes through this Redis (redis://, rediss://, unix://); enables failover"),
    ("--public-url", "public_url", str, "WebSocket URL other nodes send this node's clients to (default ws://HOST:PORT)"),
    ("--lease-ttl", "lease_ttl_s", float, "seconds before a silent node's rooms move to another node"),
    ("--checkpoint-interval", "checkpoint_interval", int, "ticks between room checkpoints (0: one second's worth)"),
]


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected on/off, got {text!r}")


def _env_name(flag: str) -> str:
    return "TICKROOM_" + flag.lstrip("-").replace("-", "_").upper()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tickroom", description="tickroom: authoritative multiplayer game server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a game server node")
    for flag, name, kind, help_text in _SERVE_FLAGS:
        convert = _parse_bool if kind == "bool" else kind
        env = _env_name(flag)
        default = getattr(_DEFAULTS, name)
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
            metavar="ON|OFF" if kind == "bool" else None,
            help=f"{help_text} [env {env}; default {getattr(_DEFAULTS, name)}]",
        )
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    names = {f.name for f in fields(ServerConfig)}
    return ServerConfig(**{k: v for k, v in vars(args).items() if k in names})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        config = config_from_args(args)
        _setup_logging(config)
        trio.run(_serve_until_signal, config)
        return 0
    return 2


def _setup_logging(config: ServerConfig) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if config.sentry_dsn:
        import sentry_sdk

        # The logging integration (on by default) turns log.exception in the
        # room and connection fences into Sentry events.
        sentry_sdk.init(dsn=config.sentry_dsn)


async def _serve_until_signal(config: ServerConfig) -> None:
    from .app import GameServer

    server = GameServer(config)
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

            nursery.start_soon(stop_on_signal)
            await server.run()
            nursery.cancel_scope.cancel()
