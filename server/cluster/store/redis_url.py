"""``--redis-url``: which Redis topology a URL names, parsed without I/O.

Three forms:

- one Redis: whatever redis-py's ``Redis.from_url`` reads (``redis://``,
  ``rediss://``, ``unix://``);
- a Sentinel group: ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]``,
  the hosts being the Sentinels (the password is the data nodes'; a
  ``?sentinel_password=...`` query authenticates to the Sentinels). The
  client asks the Sentinels where the master of ``service_name`` is and asks
  again whenever a connection to it fails, so a promoted replica is found
  by itself.

- a Redis Cluster: ``redis+cluster://[[user]:password@]host:port[,host:port...]``,
  the hosts being seed nodes (any live one is enough; the client reads the
  slot map from it and follows MOVED redirections and failovers). A Cluster
  has only database 0.

The parser only reads the text: it never connects, so a bad URL fails at
start-up with a message naming the part that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_REDIS_PORT = 6379


class BadRedisURL(ValueError):
    """The URL is not one of the forms above; the message says why."""


@dataclass(frozen=True)
class SentinelTarget:
    """A Sentinel group: where its Sentinels are and which master to use."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None  # of the master and replicas
    sentinel_password: str | None = None


@dataclass(frozen=True)
class ClusterTarget:
    """A Redis Cluster: seed nodes and credentials."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None


def is_sentinel_url(url: str) -> bool:
    return url.lower().startswith(SENTINEL_SCHEME + "://")


def is_cluster_url(url: str) -> bool:
    return url.lower().startswith(CLUSTER_SCHEME + "://")


def _userinfo(netloc: str) -> tuple[str | None, str | None, str]:
    """(username, password, hosts) of ``[[user]:password@]hosts``."""
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        return None, None, netloc
    user, colon, secret = userinfo.partition(":")
    return unquote(user) or None, unquote(secret) if colon else None, hosts


def parse_cluster_url(url: str) -> ClusterTarget:
    """Read a ``redis+cluster://`` URL. Raises BadRedisURL."""
    if not is_cluster_url(url):
        raise BadRedisURL(f"not a {CLUSTER_SCHEME}:// URL")
    rest = url[len(CLUSTER_SCHEME) + 3 :]
    netloc, _, path = rest.partition("/")
    if path.partition("?")[2]:
        raise BadRedisURL("a redis+cluster:// URL takes no options")
    if path.partition("?")[0].strip("/") not in ("", "0"):
        raise BadRedisURL("a Redis Cluster has only database 0")
    username, password, hosts = _userinfo(netloc)
    nodes = tuple(_host_port(h.strip(), DEFAULT_REDIS_PORT) for h in hosts.split(",") if h.strip())
    if not nodes:
        raise BadRedisURL("no node (redis+cluster://host:port[,host:port])")
    return ClusterTarget(nodes, username, password)


def _host_port(part: str, default_port: int = DEFAULT_SENTINEL_PORT) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or a bare host (``default_port``)."""
    if part.startswith("["):
        host, sep, rest = part[1:].partition("]")
        if not sep:
            raise BadRedisURL(f"unclosed '[' in {part!r}")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = part.rpartition(":") if ":" in part else (part, "", "")
    if not host:
        raise BadRedisURL(f"no host in {part!r}")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise BadRedisURL(f"port {port_text!r} of {part!r} is not a number") from None
    if not 0 < port < 65536:
        raise BadRedisURL(f"port {port} of {part!r} is out of range")
    return host, port


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Read a ``redis+sentinel://`` URL. Raises BadRedisURL."""
    if not is_sentinel_url(url):
        raise BadRedisURL(f"not a {SENTINEL_SCHEME}:// URL")
    rest = url[len(SENTINEL_SCHEME) + 3 :]
    netloc, _, path_query = rest.partition("/")
    path, _, query = path_query.partition("?")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        userinfo, hosts = "", netloc
    username = password = None
    if userinfo:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(h.strip()) for h in hosts.split(",") if h.strip())
    if not sentinels:
        raise BadRedisURL("no Sentinel host (redis+sentinel://host:port[,host:port]/service_name[/db])")
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise BadRedisURL("no service name (redis+sentinel://host:port/service_name[/db])")
    if len(parts) > 2:
        raise BadRedisURL(f"path {path!r} has more than /service_name/db")
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise BadRedisURL(f"database {parts[1]!r} is not a number")
        db = int(parts[1])
    options = parse_qs(query, keep_blank_values=True)
    unknown = set(options) - {"sentinel_password"}
    if unknown:
        raise BadRedisURL(f"unknown option(s) {sorted(unknown)}: only sentinel_password")
    sentinel_password = options.get("sentinel_password", [None])[-1]
    return SentinelTarget(sentinels, unquote(parts[0]), db, username, password, sentinel_password)
