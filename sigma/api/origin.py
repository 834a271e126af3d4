"""Which web pages may open `/ws`: the check against cross-site WebSocket hijacking.

Browsers apply no same-origin policy to WebSockets: any page a user visits may open `/ws` on
the API, and the browser says which page it is only in the handshake's `Origin` header. The
API authenticates with a bearer token that such a page does not have, but a browser can also
carry credentials on its own (a reverse proxy's single-sign-on cookie, a client certificate),
so the handshake of a foreign page is refused before anything else is looked at.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

WEB_SCHEMES = frozenset({"http", "https"})


def normal_origin(origin: str) -> str:
    """`origin` as browsers send it: lower case, without a trailing slash."""
    return origin.strip().rstrip("/").lower()


def origin_allowed(origin: str | None, host: str | None, allowed: Iterable[str]) -> bool:
    """True when a WebSocket handshake with header `Origin: origin` may go on: it has none
    (not a browser: a script can send any Origin it likes anyway), it is the API's own
    (its host and port are the request's `Host`), or it is one of `allowed`
    (`scheme://host[:port]`). An opaque origin (`null`: a sandboxed frame, a local file) is
    never allowed."""
    if origin is None:
        return True
    normal = normal_origin(origin)
    if normal in {normal_origin(a) for a in allowed}:
        return True
    parts = urlsplit(normal)
    return parts.scheme in WEB_SCHEMES and host is not None and parts.netloc == host.lower()
