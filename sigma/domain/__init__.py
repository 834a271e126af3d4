"""Value types shared by every layer. Depends on nothing else in SIGMA."""

from sigma.domain.instruments import Instrument, TickLadder
from sigma.domain.market import Bar, Tick
from sigma.domain.money import to_decimal, utc
from sigma.domain.orders import Fill, Order, OrderStatus, OrderType, Side, TimeInForce
from sigma.domain.positions import OpenLot, Position, Trade
from sigma.domain.signals import Signal, SignalAction

__all__ = [
    "Bar",
    "Fill",
    "Instrument",
    "OpenLot",
    "Order",
    "OrderStatus",
    "OrderType",
    "Position",
    "Side",
    "Signal",
    "SignalAction",
    "Tick",
    "TickLadder",
    "TimeInForce",
    "Trade",
    "to_decimal",
    "utc",
]
