"""Bind hosts to URLs other machines can reach.

A server binds to a host (an address, a name, or a wildcard: "" / 0.0.0.0 /
::); the URL it hands out names a host others can reach: a wildcard becomes
this machine's name, and an IPv6 address gets its brackets (RFC 3986).
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit

WILDCARD_HOSTS = ("", "0.0.0.0", "::")  # noqa: S104 - recognised, never bound to  # nosec B104


def url_for(scheme: str, host: str, port: int, *, hostname: str | None = None) -> str:
    """``scheme://host:port`` for a bind ``host``: a wildcard becomes
    ``hostname`` (default: this machine's name); an IPv6 address is bracketed.
    Does NOT check that the host resolves or the port listens."""
    if host in WILDCARD_HOSTS:
        host = hostname if hostname is not None else socket.gethostname()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def reachable_url(url: str, *, hostname: str | None = None) -> str:
    """``url`` with a wildcard host replaced as in ``url_for`` (the rest kept)."""
    parts = urlsplit(url)
    if parts.hostname is None or parts.hostname not in WILDCARD_HOSTS:
        return url
    assert parts.port is not None
    base = url_for(parts.scheme, parts.hostname, parts.port, hostname=hostname)
    return urlunsplit(urlsplit(base)._replace(path=parts.path, query=parts.query, fragment=parts.fragment))
