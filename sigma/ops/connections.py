"""Counting a server's open connections, in all and per client address (the API's uvicorn
server and `sigma venue`'s aiohttp one both refuse a connection beyond them)."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable

__all__ = ["ConnectionLimits", "Peer"]

Peer = tuple[str, int]
"""A TCP peer: (host, port)."""


class ConnectionLimits:
    """The open connections of one server: at most `total`, at most `per_client` from one
    address (except the `exempt` ones: addresses, networks, "*" for any, or other names
    matched as written, as uvicorn matches its trusted proxies)."""

    def __init__(self, total: int, per_client: int, exempt: Iterable[str] = ()) -> None:
        self.total = total
        self.per_client = per_client
        names = list(exempt)
        self._exempt_all = "*" in names
        self._exempt: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._exempt_names: set[str] = set()
        for name in names:
            try:
                self._exempt.append(ipaddress.ip_network(name, strict=False))
            except ValueError:
                self._exempt_names.add(name)
        self._admitted: dict[Peer, bool] = {}
        self._per_host: Counter[str] = Counter()
        self._open = 0

    def admit(self, peer: Peer | None) -> bool:
        """Count a new connection from `peer`; False (and not counted) beyond a bound. A
        connection without an address (a Unix socket) is always admitted."""
        if peer is None:
            return True
        host = peer[0]
        admitted = self._open < self.total and (
            self._per_host[host] < self.per_client or self._is_exempt(host)
        )
        self._admitted[peer] = admitted
        if admitted:
            self._open += 1
            self._per_host[host] += 1
        return admitted

    def release(self, peer: Peer | None) -> None:
        """Forget the connection from `peer` (closed)."""
        if peer is None or not self._admitted.pop(peer, False):
            return
        self._open -= 1
        self._per_host[peer[0]] -= 1
        if not self._per_host[peer[0]]:
            del self._per_host[peer[0]]

    def refused(self, peer: Peer | None) -> bool:
        """Whether the open connection from `peer` was refused."""
        return peer is not None and self._admitted.get(peer) is False

    @property
    def open(self) -> int:
        """The admitted connections open now."""
        return self._open

    def _is_exempt(self, host: str) -> bool:
        if self._exempt_all or host in self._exempt_names:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._exempt)
