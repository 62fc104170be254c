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
    ("--rate-per-tick", "rate_per_tick", float, "client messages allowed per tick on average (1 s burst)"),
    ("--strike-limit", "strike_limit", int, "recoverable client errors in a burst before closing"),
    ("--max-connections", "max_connections", int, "client connections per node (0: no limit)"),
    ("--max-connections-per-ip", "max_connections_per_ip", int, "client connections per source address (0: no limit)"),
    ("--allowed-origins", "allowed_origins", str, "comma-separated browser Origins allowed to connect (empty: all)"),
    ("--tls-cert", "tls_cert", str, "PEM certificate chain: serve wss:// (with --tls-key)"),
    ("--tls-key", "tls_key", str, "PEM private key of --tls-cert"),
    ("--graceful-timeout", "graceful_timeout_s", float, "seconds the shutdown may take"),
    ("--stats-interval", "stats_interval_s", float, "seconds between load summaries in the log (0: never)"),
    ("--log-level", "log_level", str, "DEBUG, INFO, WARNING or ERROR"),
    ("--sentry-dsn", "sentry_dsn", str, "report errors to this Sentry DSN (a secret: prefer the file or the env)"),
    ("--sentry-dsn-file", "sentry_dsn_file", str, "read the Sentry DSN from this file"),
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
            # The default shown is the built-in one, never the environment's
            # value: --help must not print a secret set in the environment.
            help=f"{help_text} [env {env}; default {getattr(_DEFAULTS, name)!s:.40}]",
        )
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    names = {f.name for f in fields(ServerConfig)}
    return ServerConfig(**{k: v for k, v in vars(args).items() if k in names})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        config = config_from_args(args)
        try:
            config.ssl_context  # noqa: B018 - load the certificate now: fail at start, not at the first client
        except (ValueError, OSError) as exc:
            parser.error(f"TLS: {exc}")
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
    log = logging.getLogger("tickroom")
    try:
        dsn = config.read_sentry_dsn()
    except OSError as exc:
        # strerror and the file name only: never the file's content.
        log.error("cannot read --sentry-dsn-file %s: %s; Sentry disabled", config.sentry_dsn_file, exc.strerror)
        return
    if dsn:
        import sentry_sdk

        # The logging integration (on by default) turns log.exception in the
        # room and connection fences into Sentry events.
        try:
            sentry_sdk.init(dsn=dsn)
        except Exception as exc:  # noqa: BLE001 - a bad DSN must not stop the server
            # The SDK's message may quote the DSN: log the type only.
            log.error("Sentry disabled: invalid DSN (%s)", type(exc).__name__)
        else:
            log.info("Sentry enabled")


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
