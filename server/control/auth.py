"""The control API's authentication: one bearer API key.

The key is compared with ``hmac.compare_digest`` so the time a refusal takes
says nothing about how much of a guess was right. Without a key, the API is
only safe where nobody else can reach it: ``check_exposure`` refuses any
non-loopback address.
"""

from __future__ import annotations

import hmac
import ipaddress

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
