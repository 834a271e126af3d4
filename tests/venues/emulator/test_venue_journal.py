"""The venue's state file: every change appended as a JSON line, read back (and compacted) at
start, a torn last line forgiven."""

from __future__ import annotations

import json
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path

import pytest
from venue_helpers import BTC_SPEC

from sigma.venues.emulator.accounts import Account
from sigma.venues.emulator.journal import FileJournal, VenueState
from sigma.venues.emulator.model import (
    FeeRule,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    VenueOrder,
    VenueTrade,
)
from sigma.venues.emulator.venue import Venue

D = Decimal
SYMBOL = "BTCUSDT"
KEY = "key-1"
SPEC = BTC_SPEC


def _venue(journal: FileJournal | None, name: str = "binance", **funds: str) -> Venue:
    balances = {asset: D(v) for asset, v in (funds or {"USDT": "100000", "BTC": "1"}).items()}
    account = Account.funded(KEY, "secret", balances)
    return Venue(
        name,
        [SPEC],
        [account],
        fee_rule=FeeRule.QUOTE if name == "upbit" else FeeRule.RECEIVED,
        clock=lambda: 1_700_000_000_000,
        journal=journal,
    )


def _restart(path: Path, name: str = "binance", **funds: str) -> tuple[Venue, FileJournal]:
    journal = FileJournal(path)
    state = journal.load().get(name, VenueState())
    venue = _venue(journal, name, **funds)
    venue.restore(state.orders.values(), state.trades.values(), state.balance_rows())
    return venue, journal


def _order(**changes: object) -> VenueOrder:
    fields: dict[str, object] = {
        "order_id": 1,
        "client_id": "c",
        "account": KEY,
        "symbol": SYMBOL,
        "side": Side.BUY,
        "type": OrderType.LIMIT,
        "tif": TimeInForce.GTC,
        "qty": D("0.1"),
        "quote_qty": None,
        "price": D(90000),
        "stop_price": None,
        "status": OrderStatus.NEW,
        "created_ms": 1,
        "updated_ms": 2,
    }
    fields.update(changes)
    return VenueOrder(**fields)  # type: ignore[arg-type]


def test_a_venue_killed_after_accepting_orders_knows_them_when_it_starts_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "venue.jsonl"
    venue, _journal = _restart(path)
    resting = venue.place(
        KEY, OrderRequest(SYMBOL, Side.BUY, OrderType.LIMIT, qty=D("0.25"), price=D(91000))
    )
    venue.tick(SYMBOL, D(91000), D(1))
    stop = venue.place(
        KEY,
        OrderRequest(SYMBOL, Side.SELL, OrderType.STOP_LOSS, qty=D("0.5"), stop_price=D(90000)),
    )
    venue.place(KEY, OrderRequest(SYMBOL, Side.BUY, OrderType.MARKET, qty=D("0.01")))
    # Killed: the journal is never closed; every change was flushed line by line.
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    assert all(json.loads(line)["venue"] == "binance" for line in lines)

    again, journal = _restart(path, USDT="0", BTC="0")
    account = again.accounts[KEY]
    old = venue.accounts[KEY]
    for asset in ("USDT", "BTC"):
        assert account.balance(asset) == old.balance(asset)
    assert again.orders(KEY) == venue.orders(KEY)
    assert again.trades(KEY) == venue.trades(KEY)
    # Loading rewrote the file as one snapshot line.
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1
    # The restored orders work on.
    again.tick(SYMBOL, D(90000), D(1))
    again.tick(SYMBOL, D(90000), D(1))
    assert again.order(KEY, order_id=resting.order_id).status is OrderStatus.FILLED
    assert again.order(KEY, order_id=stop.order_id).status is OrderStatus.FILLED
    journal.close()
    journal.close()  # closing twice is harmless

    third, _ = _restart(path, USDT="0", BTC="0")
    assert third.orders(KEY) == again.orders(KEY)
    assert third.trades(KEY) == again.trades(KEY)
    assert third.accounts[KEY].balance("USDT") == account.balance("USDT")
    assert third.accounts[KEY].balance("BTC") == account.balance("BTC")


def test_decimals_round_trip_exactly(tmp_path: Path) -> None:
    path = tmp_path / "venue.jsonl"
    journal = FileJournal(path)
    order = _order(
        qty=None,
        quote_qty=D("1000.123456789012"),
        price=None,
        stop_price=D("0E-12"),
        filled=D("0.00000001"),
        cum_quote=D("15621.967573456605"),
        fees={"KRW": D("7.80708025"), "BTC": D("1E-8")},
        locked=D("0E-12"),
        working=False,
        trade_count=3,
        type=OrderType.STOP_LOSS,
        tif=TimeInForce.IOC,
        side=Side.SELL,
        status=OrderStatus.PARTIALLY_FILLED,
    )
    trade = VenueTrade(
        trade_id=7,
        order_id=1,
        client_id="c",
        account=KEY,
        symbol=SYMBOL,
        side=Side.SELL,
        price=D("4999"),
        qty=D("3.12345679"),
        quote_qty=D("15614.16049321"),
        fee=D("7.807080246605"),
        fee_asset="KRW",
        maker=True,
        time_ms=123,
    )
    journal.write("upbit", [order], [trade], {KEY: {"KRW": (D("-0"), D("1.10"))}})
    state = FileJournal(path).load()["upbit"]
    assert state.orders == {1: order}
    assert state.trades == {7: trade}
    loaded = state.orders[1]
    assert str(loaded.cum_quote) == "15621.967573456605" and loaded.price is None
    assert str(state.balances[KEY]["KRW"][1]) == "1.10"
    assert state.balance_rows() == {KEY: [("KRW", D(0), D("1.10"))]}


def test_later_lines_update_earlier_ones_and_venues_stay_apart(tmp_path: Path) -> None:
    path = tmp_path / "venue.jsonl"
    journal = FileJournal(path)
    journal.write("binance", [_order()], [], {KEY: {"USDT": (D(1), D(2)), "BTC": (D(3), D(0))}})
    journal.write("upbit", [_order(symbol="KRW-BTC")], [], {})
    filled = _order(status=OrderStatus.FILLED, filled=D("0.1"), updated_ms=5)
    journal.write("binance", [filled, _order(order_id=2)], [], {KEY: {"USDT": (D(4), D(0))}})
    journal.close()
    states = FileJournal(path).load()
    assert set(states) == {"binance", "upbit"}
    assert states["binance"].orders == {1: filled, 2: _order(order_id=2)}
    assert states["binance"].balances == {KEY: {"USDT": (D(4), D(0)), "BTC": (D(3), D(0))}}
    assert states["upbit"].orders[1].symbol == "KRW-BTC"
    # Compacted: a line per venue, and what it says is what the three lines said.
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    assert FileJournal(path).load()["binance"].orders == states["binance"].orders


@pytest.mark.parametrize(
    "torn",
    ['{"venue":"binance","orders":[{"order_id":', '{"venue": "binance", "orders": [], "ba'],
)
def test_a_torn_last_line_is_ignored(tmp_path: Path, torn: str) -> None:
    path = tmp_path / "venue.jsonl"
    journal = FileJournal(path)
    journal.write("binance", [_order()], [], {})
    journal.close()
    with path.open("a", encoding="utf-8") as out:
        out.write(torn)  # killed mid-write: no newline either
    states = FileJournal(path).load()
    assert states["binance"].orders == {1: _order()}
    # The torn line is gone from the compacted file, so the next write starts a clean line.
    journal = FileJournal(path)
    journal.load()
    journal.write("binance", [_order(order_id=2)], [], {})
    assert set(FileJournal(path).load()["binance"].orders) == {1, 2}


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        '{"orders": []}',  # no venue
        '{"venue": "binance", "orders": [{"order_id": 1}]}',  # an order without its fields
        '{"venue": "binance", "balances": {"k": {"USDT": ["x", "1"]}}}',
        '{"venue": "binance", "balances": []}',
        '["a list"]',
    ],
)
def test_a_bad_line_before_the_last_is_an_error_naming_the_file_and_line(
    tmp_path: Path, bad: str
) -> None:
    path = tmp_path / "venue.jsonl"
    good = json.dumps({"venue": "binance", "orders": [], "trades": [], "balances": {}})
    path.write_text(f"{good}\n{bad}\n{good}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"venue\.jsonl, line 2: ") as caught:
        FileJournal(path).load()
    assert str(path) in str(caught.value)
    # Nothing was rewritten.
    assert path.read_text(encoding="utf-8") == f"{good}\n{bad}\n{good}\n"


def test_a_missing_file_is_an_empty_state_and_writing_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "venue.jsonl"
    journal = FileJournal(path)
    assert journal.load() == {}
    assert path.read_text(encoding="utf-8") == ""
    assert not path.with_suffix(".jsonl.tmp").exists()
    fresh = FileJournal(tmp_path / "new" / "venue.jsonl")
    fresh.write("binance", [], [], {KEY: {"BTC": (D(1), D(0))}})
    fresh.close()
    assert FileJournal(tmp_path / "new" / "venue.jsonl").load()["binance"].balances == {
        KEY: {"BTC": (D(1), D(0))}
    }


def test_an_empty_line_at_the_end_is_torn_but_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "venue.jsonl"
    good = json.dumps({"venue": "binance"})
    path.write_text(f"{good}\n\n{good}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        FileJournal(path).load()
    path.write_text(f"{good}\n \n", encoding="utf-8")
    assert set(FileJournal(path).load()) == {"binance"}


def test_whether_a_client_id_was_given_survives_and_old_lines_default_to_given(
    tmp_path: Path,
) -> None:
    path = tmp_path / "venue.jsonl"
    journal = FileJournal(path)
    journal.write("upbit", [_order(order_id=1, client_id_given=False), _order(order_id=2)], [], {})
    journal.close()
    old = _order(order_id=3)
    raw = {"venue": "upbit", "orders": [json.loads(json.dumps(asdict(old), default=str))]}
    del raw["orders"][0]["client_id_given"]  # written before the field existed
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(raw) + "\n")
    orders = FileJournal(path).load()["upbit"].orders
    assert [orders[i].client_id_given for i in (1, 2, 3)] == [False, True, True]
