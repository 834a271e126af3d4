"""Property tests of the venue's accounting: whatever orders, ticks and cancels arrive, money is
neither made nor lost, locks match the open orders, and fees land in the asset the rule says."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigma.venues.emulator.accounts import Account
from sigma.venues.emulator.model import (
    BalanceEvent,
    FeeRule,
    MarketSpec,
    OrderEvent,
    OrderRequest,
    OrderType,
    Reason,
    Rejection,
    Side,
    TimeInForce,
    VenueEvent,
    VenueOrder,
    floor_to,
)
from sigma.venues.emulator.venue import Venue

D = Decimal
KEYS = ("alice", "bob")
TICK = D("0.01")
STEP = D("0.001")


def _spec(quote_precision: int, base_precision: int) -> MarketSpec:
    # A small market: a thin book (5 levels of 1) so takers walk it and exhaust it, two-decimal
    # quote precision in some runs so a fee's rounding matters.
    return MarketSpec(
        symbol="ABCUSD",
        base="ABC",
        quote="USD",
        tick_sizes=((D(0), TICK),),
        step_size=STEP,
        min_qty=STEP,
        max_qty=D(1000),
        min_price=TICK,
        max_price=D(100000),
        # A notional of at least one unit of the quote's precision: a fee rounded up to a whole
        # unit then never exceeds what the sale brings in.
        min_notional=max(D("0.01"), D(2).scaleb(-quote_precision)),
        start_price=D(100),
        level_qty=D(1),
        levels=5,
        spread_bps=D(10),
        level_bps=D(5),
        max_open_orders=8,
        base_precision=base_precision,
        quote_precision=quote_precision,
    )


@dataclass(frozen=True)
class Place:
    key: str
    side: Side
    type: OrderType
    #: share of the free funds the order uses (quantities derive from it), or a fixed qty
    share: Decimal
    #: limit/stop price offset from the last price, in ticks
    offset: int
    tif: TimeInForce
    by_quote: bool


@dataclass(frozen=True)
class Tick:
    bps: int
    qty: Decimal


@dataclass(frozen=True)
class Cancel:
    index: int


@dataclass(frozen=True)
class CancelAll:
    key: str


Action = Place | Tick | Cancel | CancelAll

_places = st.builds(
    Place,
    key=st.sampled_from(KEYS),
    side=st.sampled_from(Side),
    type=st.sampled_from(OrderType),
    share=st.sampled_from([D(1), D("0.999"), D("0.5"), D("0.25"), D("0.1"), D("0.01")]),
    offset=st.integers(-200, 200),
    tif=st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]),
    by_quote=st.booleans(),
)
_ticks = st.builds(
    Tick,
    bps=st.integers(-150, 150),
    qty=st.sampled_from([D("0.5"), D(1), D(3)]),
)
_actions: st.SearchStrategy[Action] = st.one_of(
    _places,
    _places,
    _ticks,
    _ticks,
    st.builds(Cancel, index=st.integers(0, 40)),
    st.builds(CancelAll, key=st.sampled_from(KEYS)),
)
_balances = st.fixed_dictionaries(
    {
        "USD": st.sampled_from([D(25000), D(1000), D("100.07"), D(50), D("0.5"), D(0)]),
        "ABC": st.sampled_from([D(40), D(3), D("0.5"), D("0.001"), D(0)]),
    }
)


@dataclass
class Run:
    venue: Venue
    initial: dict[str, dict[str, Decimal]]
    events: list[VenueEvent] = field(default_factory=list)
    placed: list[VenueOrder] = field(default_factory=list)


def _request(venue: Venue, spec: MarketSpec, account: Account, action: Place) -> OrderRequest:
    last = venue.last_price(spec.symbol)
    price = max(TICK, last + TICK * action.offset)
    if action.side is Side.BUY:
        budget = account.balance("USD")[0] * action.share
        qty = floor_to(budget / price / D("1.002"), STEP)
    else:
        qty = floor_to(account.balance("ABC")[0] * action.share, STEP)
    qty = max(qty, STEP)
    if action.type is OrderType.MARKET and action.by_quote:
        quote = floor_to(qty * last, TICK)
        return OrderRequest(spec.symbol, action.side, action.type, quote_qty=quote)
    limit = price if action.type.has_limit else None
    stop = price if action.type.is_stop else None
    if action.type.is_stop and action.type.has_limit:
        # The limit a little beyond the stop, so a triggered order can trade.
        beyond = TICK * 20 if action.side is Side.BUY else -TICK * 20
        limit = max(TICK, price + beyond)
    return OrderRequest(
        spec.symbol, action.side, action.type, qty=qty, price=limit, stop_price=stop, tif=action.tif
    )


def _state(venue: Venue) -> tuple[object, ...]:
    accounts = tuple(
        sorted(
            (k, tuple(sorted(a.free.items())), tuple(sorted(a.locked.items())))
            for k, a in venue.accounts.items()
        )
    )
    orders = tuple(
        (o.order_id, o.status, o.filled, o.locked) for key in KEYS for o in venue.orders(key)
    )
    return accounts, orders, len(venue.trades(KEYS[0])) + len(venue.trades(KEYS[1]))


def _play(
    fee_rule: FeeRule,
    fees: tuple[Decimal, Decimal],
    precision: tuple[int, int],
    balances: dict[str, dict[str, Decimal]],
    actions: list[Action],
) -> Run:
    spec = _spec(*precision)
    accounts = [Account.funded(key, "secret", balances[key]) for key in KEYS]
    venue = Venue(
        "test",
        [spec],
        accounts,
        maker_fee=fees[0],
        taker_fee=fees[1],
        fee_rule=fee_rule,
        clock=lambda: 1_700_000_000_000,
    )
    run = Run(venue, {key: dict(balances[key]) for key in KEYS})
    venue.listeners.append(run.events.append)
    for action in actions:
        if isinstance(action, Place):
            account = venue.accounts[action.key]
            request = _request(venue, spec, account, action)
            before = _state(venue)
            try:
                run.placed.append(venue.place(action.key, request))
            except Rejection:
                # A refused request changes nothing.
                assert _state(venue) == before
        elif isinstance(action, Tick):
            last = venue.last_price(spec.symbol)
            venue.tick(spec.symbol, last * (1 + D(action.bps) / 10_000), action.qty)
        elif isinstance(action, Cancel):
            if run.placed:
                order = run.placed[action.index % len(run.placed)]
                try:
                    venue.cancel(order.account, spec.symbol, order_id=order.order_id)
                except Rejection:
                    assert order.status.is_final
        else:
            venue.cancel_all(action.key, spec.symbol)
        _check_balances_non_negative(venue)
    return run


def _check_balances_non_negative(venue: Venue) -> None:
    for key, account in venue.accounts.items():
        for asset in account.assets():
            free, locked = account.balance(asset)
            assert free >= 0, (key, asset, free, locked)
            assert locked >= 0, (key, asset, free, locked)


def _check_invariants(run: Run, fee_rule: FeeRule, taker_fee: Decimal) -> None:
    venue = run.venue
    for key in KEYS:
        account = venue.accounts[key]
        trades = venue.trades(key)
        # Conservation, exactly: initial + bought - sold - fees == free + locked.
        expected = dict(run.initial[key])
        for t in trades:
            sign = 1 if t.side is Side.BUY else -1
            expected["ABC"] += sign * t.qty
            expected["USD"] -= sign * t.price * t.qty
            expected[t.fee_asset] -= t.fee
            assert t.quote_qty == t.price * t.qty
            assert t.fee >= 0
            if fee_rule is FeeRule.QUOTE:
                assert t.fee_asset == "USD"
            else:
                assert t.fee_asset == ("ABC" if t.side is Side.BUY else "USD")
        for asset in ("ABC", "USD"):
            free, locked = account.balance(asset)
            assert free + locked == expected[asset], (key, asset)
        # Per order: fills add up, nothing is overfilled, locks belong to open orders only.
        held = {"ABC": D(0), "USD": D(0)}
        for order in venue.orders(key):
            fills = [t for t in trades if t.order_id == order.order_id]
            assert order.filled == sum((t.qty for t in fills), D(0))
            assert order.cum_quote == sum((t.price * t.qty for t in fills), D(0))
            assert order.trade_count == len(fills)
            for asset in ("ABC", "USD"):
                paid = sum((t.fee for t in fills if t.fee_asset == asset), D(0))
                assert order.fees.get(asset, D(0)) == paid
            if order.qty is not None:
                assert order.filled <= order.qty
            assert order.locked >= 0
            if order.status.is_final:
                assert order.locked == 0, order
            else:
                held["ABC" if order.side is Side.SELL else "USD"] += order.locked
                if order.side is Side.BUY and fee_rule is FeeRule.QUOTE and order.qty:
                    # Upbit's rule: a bid holds its price, quantity and the fee on top.
                    assert order.price is not None or order.stop_price is not None
                    limit = order.price if order.price is not None else order.stop_price
                    assert limit is not None
                    assert order.locked == limit * order.remaining * (1 + taker_fee)
        for asset in ("ABC", "USD"):
            assert account.balance(asset)[1] == held[asset], (key, asset)
    # The last balance event of each account and asset shows the balance as it is.
    seen: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    for event in run.events:
        if isinstance(event, BalanceEvent):
            for asset, row in event.balances.items():
                seen[(event.account, asset)] = row
    for (key, asset), row in seen.items():
        assert venue.accounts[key].balance(asset) == row
    # Every fill was announced once, with the order as it was after it.
    announced = [e.trade for e in run.events if isinstance(e, OrderEvent) and e.kind == "TRADE"]
    everything = sorted((t for key in KEYS for t in venue.trades(key)), key=lambda t: t.trade_id)
    assert announced == everything


_FEES = st.sampled_from(
    [
        (D("0.001"), D("0.001")),
        (D("0.0005"), D("0.0005")),
        (D(0), D("0.002")),
        (D("0.0002"), D("0.0007")),
    ]
)
_PRECISION = st.sampled_from([(8, 8), (2, 8), (2, 3), (0, 8)])


@settings(
    max_examples=800,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    fee_rule=st.sampled_from(FeeRule),
    fees=_FEES,
    precision=_PRECISION,
    balances=st.fixed_dictionaries({key: _balances for key in KEYS}),
    actions=st.lists(_actions, min_size=5, max_size=50),
)
def test_accounting_invariants_hold_for_any_order_flow(
    fee_rule: FeeRule,
    fees: tuple[Decimal, Decimal],
    precision: tuple[int, int],
    balances: dict[str, dict[str, Decimal]],
    actions: list[Action],
) -> None:
    run = _play(fee_rule, fees, precision, balances, actions)
    _check_invariants(run, fee_rule, fees[1])


_resting = st.builds(
    Place,
    key=st.sampled_from(KEYS),
    side=st.sampled_from(Side),
    type=st.sampled_from([OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.STOP_LOSS_LIMIT]),
    share=st.sampled_from([D(1), D("0.5"), D("0.3"), D("0.1")]),
    offset=st.integers(-150, 150),
    tif=st.just(TimeInForce.GTC),
    by_quote=st.just(False),
)
_walk = st.lists(st.builds(Tick, bps=st.integers(-60, 60), qty=st.just(D(1))), min_size=10)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    fee_rule=st.sampled_from(FeeRule),
    fees=_FEES,
    precision=_PRECISION,
    orders=st.lists(_resting, min_size=1, max_size=8),
    walk=_walk,
    cancels=st.lists(st.builds(Cancel, index=st.integers(0, 7)), max_size=2),
)
def test_resting_orders_fill_over_a_price_walk_without_losing_money(
    fee_rule: FeeRule,
    fees: tuple[Decimal, Decimal],
    precision: tuple[int, int],
    orders: list[Place],
    walk: list[Tick],
    cancels: list[Cancel],
) -> None:
    # Rich accounts and large orders (several book levels), so most of them rest and then fill
    # as makers, a level's quantity per tick.
    balances = {key: {"USD": D(2000), "ABC": D(12)} for key in KEYS}
    half = len(walk) // 2
    actions: list[Action] = [*orders, *walk[:half], *cancels, *walk[half:]]
    run = _play(fee_rule, fees, precision, balances, actions)
    _check_invariants(run, fee_rule, fees[1])


# ---------------------------------------------------------------- the wallet itself
def test_account_moves_between_free_and_locked_and_reports_changes() -> None:
    account = Account.funded("k", "s", {"USD": D(100)})
    assert account.balance("ABC") == (D(0), D(0))
    account.lock("USD", D(30))
    assert account.balance("USD") == (D(70), D(30))
    account.spend_locked("USD", D(10))
    account.unlock("USD", D(20))
    account.credit("ABC", D("0.5"))
    account.debit("USD", D(90))
    assert account.balance("USD") == (D(0), D(0))
    assert account.assets() == ["ABC", "USD"]
    assert account.take_changed() == {"ABC": (D("0.5"), D(0)), "USD": (D(0), D(0))}
    assert account.take_changed() == {}
    account.restore([("USD", D(5), D(1)), ("XYZ", D(0), D(2))])
    assert account.balance("USD") == (D(5), D(1)) and account.balance("XYZ") == (D(0), D(2))
    assert account.take_changed() == {}  # a restore is not a change to announce


def test_account_refuses_to_lock_or_debit_more_than_is_free() -> None:
    account = Account.funded("k", "s", {"USD": D(10)})
    account.lock("USD", D(4))
    for move in (account.lock, account.debit):
        with pytest.raises(Rejection, match="USD free 6, 6.01 needed") as refused:
            move("USD", D("6.01"))
        assert refused.value.reason is Reason.INSUFFICIENT_BALANCE
    assert account.balance("USD") == (D(6), D(4))
    account.debit("USD", D(6))
    assert account.balance("USD") == (D(0), D(4))
