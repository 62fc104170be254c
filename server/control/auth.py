"""The control API's authentication: one bearer API key.

The key is compared with ``hmac.compare_digest`` so the time a refusal takes
says nothing about how much of a guess was right. Without a key, the API is
only safe where nobody else can reach it: ``check_exposure`` refuses any
non-loopback address.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # for load balancers and Prometheus


class InsecureControlAPI(Exception):
    """No API key and a control address others can reach."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost, or a wildcard: assume reachable


def check_exposure(host: str, api_key: str | None) -> None:
    """Raise InsecureControlAPI when the API would be open to the network."""
    if not api_key and not is_loopback(host):
        raise InsecureControlAPI(
            f"the control API would listen on {host or '*'} without an API key; "
            "set --api-key / TICKROOM_API_KEY / --api-key-file, or --control-host 127.0.0.1"
        )


def authorized(headers: list[tuple[bytes, bytes]], api_key: str | None) -> bool:
    """True when ``headers`` carry ``Authorization: Bearer <api_key>`` (or
    no key is configured: loopback only, see check_exposure)."""
    if not api_key:
        return True
    expected = b"Bearer " + api_key.encode("utf-8")
    for name, value in headers:
        if name.lower() == b"authorization":
            return hmac.compare_digest(value.strip(), expected)
    # Compare anyway: a missing header costs the same as a wrong one.
    hmac.compare_digest(b"", expected)
    return False


# -- the keyless API against browsers -------------------------------------------
#
# Without a key the API trusts whoever reaches loopback. A web page open in the
# operator's browser reaches loopback too: it can POST a form or a no-cors fetch
# (a "simple request", sent without a preflight) and, through DNS rebinding
# (its own name resolving to 127.0.0.1), even read the answers. Three checks
# close that, none of which a browser lets a page get around: the Host must be
# a loopback name (a rebound name is not), an Origin header, which browsers add
# to every cross-origin request and every POST, must be this API's own origin,
# and a request body must be declared JSON (a simple request cannot be).
# Sec-Fetch-Site, which newer browsers add, refuses what the Origin rule misses.

JSON_MEDIA_TYPES = ("application/json",)  # plus any application/*+json


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str  # stable, machine-readable (the error body's "reason")
    message: str


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def host_name(host: str) -> str:
    """The name part of a Host header or an origin's netloc (no port, no
    brackets, lowercase, no trailing dot)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def is_loopback_name(host: str) -> bool:
    """localhost, a name under .localhost (RFC 6761: always loopback in
    browsers), or a loopback address."""
    name = host_name(host)
    return name == "localhost" or name.endswith(".localhost") or is_loopback(name)


def browser_refusal(headers: list[tuple[bytes, bytes]]) -> Refusal | None:
    """Why the keyless API refuses this request (403), or None. Requests
    without Origin, Sec-Fetch-Site and with a loopback Host (curl, scripts,
    the matchmaker, Prometheus) pass; so does the API's own origin (a page
    served by the control port itself)."""
    host = _header(headers, b"host")
    if host is not None and not is_loopback_name(host):
        return Refusal(403, "forbidden_host", "without an API key this API answers only a loopback Host")
    origin = _header(headers, b"origin")
    if origin is not None:
        scheme, _, netloc = origin.lower().partition("://")
        if scheme not in ("http", "https") or host is None or netloc.rstrip("/") != host.lower():
            return Refusal(403, "cross_origin", "without an API key this API refuses requests from other origins")
    site = _header(headers, b"sec-fetch-site")
    if site is not None and site.lower() not in ("same-origin", "none"):
        return Refusal(403, "cross_origin", "without an API key this API refuses requests from other sites")
    return None


def body_refusal(headers: list[tuple[bytes, bytes]], body: bytes) -> Refusal | None:
    """Why a request body is refused (415): the keyless API takes a body
    only declared as JSON (Content-Type application/json or
    application/*+json, parameters allowed)."""
    if not body.strip():
        return None
    content_type = (_header(headers, b"content-type") or "").partition(";")[0].strip().lower()
    if content_type in JSON_MEDIA_TYPES or (content_type.startswith("application/") and content_type.endswith("+json")):
        return None
    return Refusal(415, "unsupported_media_type", "a request body must be sent as Content-Type: application/json")
