"""Balances per API key: free and locked per asset, moved only by the venue's order flow."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from sigma.venues.emulator.model import Reason, Rejection

__all__ = ["Account"]

_ZERO = Decimal(0)


@dataclass
class Account:
    """One API key's wallet. ``secret`` signs its requests."""

    api_key: str
    secret: str
    free: dict[str, Decimal] = field(default_factory=dict)
    locked: dict[str, Decimal] = field(default_factory=dict)
    #: assets changed since the last :meth:`take_changed`
    _changed: set[str] = field(default_factory=set)

    @classmethod
    def funded(cls, api_key: str, secret: str, balances: Mapping[str, Decimal]) -> Account:
        return cls(api_key, secret, free={a: Decimal(v) for a, v in balances.items()})

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        """(free, locked) of ``asset``."""
        return self.free.get(asset, _ZERO), self.locked.get(asset, _ZERO)

    def assets(self) -> list[str]:
        """Every asset the account has ever held, sorted."""
        return sorted(set(self.free) | set(self.locked))

    def lock(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from free to locked; refused when free is short."""
        free = self.free.get(asset, _ZERO)
        if amount > free:
            raise Rejection(Reason.INSUFFICIENT_BALANCE, f"{asset} free {free}, {amount} needed")
        self.free[asset] = free - amount
        self.locked[asset] = self.locked.get(asset, _ZERO) + amount
        self._changed.add(asset)

    def unlock(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from locked back to free."""
        self.locked[asset] = self.locked.get(asset, _ZERO) - amount
        self.free[asset] = self.free.get(asset, _ZERO) + amount
        self._changed.add(asset)

    def spend_locked(self, asset: str, amount: Decimal) -> None:
        """Take ``amount`` out of the locked funds (a fill of a resting order)."""
        self.locked[asset] = self.locked.get(asset, _ZERO) - amount
        self._changed.add(asset)

    def debit(self, asset: str, amount: Decimal) -> None:
        """Take ``amount`` out of the free funds; refused when free is short."""
        free = self.free.get(asset, _ZERO)
        if amount > free:
            raise Rejection(Reason.INSUFFICIENT_BALANCE, f"{asset} free {free}, {amount} needed")
        self.free[asset] = free - amount
        self._changed.add(asset)

    def credit(self, asset: str, amount: Decimal) -> None:
        """Add ``amount`` to the free funds."""
        self.free[asset] = self.free.get(asset, _ZERO) + amount
        self._changed.add(asset)

    def take_changed(self) -> dict[str, tuple[Decimal, Decimal]]:
        """The assets changed since the last call, with their (free, locked)."""
        changed = {asset: self.balance(asset) for asset in sorted(self._changed)}
        self._changed.clear()
        return changed

    def restore(self, rows: Iterable[tuple[str, Decimal, Decimal]]) -> None:
        """Set balances from stored (asset, free, locked) rows."""
        for asset, free, locked in rows:
            self.free[asset] = free
            self.locked[asset] = locked
