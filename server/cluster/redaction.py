"""Store URLs with their secrets hidden, for every place that prints one.

A Redis URL can carry its password two ways, and redis-py reads both: in
the userinfo (``redis://user:secret@host``) and as a query parameter
(``redis://host?password=secret``; redis-py passes every query parameter to
the connection, so ``sentinel_password=``, ``ssl_password=`` and the like
work too). ``redacted`` hides each, and never raises: a URL too broken to
parse is not printed at all, since we cannot tell where its secret is.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit

HIDDEN = "***"
UNPARSABLE = "<a URL that does not parse>"
# Query parameters whose value is a credential (case-insensitive, anywhere in
# the name: password, sentinel_password, ssl_password, auth_token, ...).
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|auth|credential", re.IGNORECASE)


def redacted(url: str) -> str:
    """``url`` with the password in its userinfo and the value of every
    secret-bearing query parameter replaced by ``***``; the scheme, user
    name, host, port, path and other parameters stay, so an operator can
    still tell which store it is."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return UNPARSABLE
    netloc = parts.netloc
    if "@" in netloc:
        # The last "@" ends the userinfo (a password may contain "@" itself
        # when the operator did not percent-encode it).
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{HIDDEN}@{hostport}" if colon else f"{userinfo}@{hostport}"
    query = "&".join(_redact_param(param) for param in parts.query.split("&")) if parts.query else ""
    fragment = HIDDEN if parts.fragment else ""  # never meaningful in a store URL; may be a pasted secret
    # Put together by hand: urlunsplit drops the "//" of unix:///path.
    head = f"{parts.scheme}:" if parts.scheme else ""
    if url[len(head) :].startswith("//"):
        head += "//" + netloc
    return head + parts.path + (f"?{query}" if parts.query else "") + (f"#{fragment}" if parts.fragment else "")


def _redact_param(param: str) -> str:
    name, equals, _ = param.partition("=")
    # Matched as redis-py reads it (parse_qs unquotes names: p%61ssword is password).
    if equals and _SECRET_PARAM.search(unquote_plus(name)):
        return f"{name}={HIDDEN}"
    return param
