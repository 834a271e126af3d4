"""Settlement agrees with the engine's Portfolio to the last digit on any fill sequence."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigma.domain import Fill, Side
from sigma.engine.portfolio import Portfolio
from sigma.execution.settlement import FeeCurrency, Holding, fee_currency, settle, settle_fee_in

TS = datetime(2026, 1, 1, tzinfo=UTC)

fills = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 50).map(Decimal),
        st.integers(5_000, 20_000).map(lambda c: Decimal(c) / 100),
        st.integers(0, 300).map(lambda c: Decimal(c) / 100),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(fills)
def test_cash_position_and_realised_pnl_match_the_portfolio(
    sequence: list[tuple[Side, Decimal, Decimal, Decimal]],
) -> None:
    portfolio = Portfolio(cash=Decimal(100_000))
    holding, cash, fees = Holding(), Decimal(100_000), Decimal(0)
    for i, (side, qty, price, fee) in enumerate(sequence):
        portfolio.apply(Fill(f"o{i}", "X", side, qty, price, fee, TS))
        result = settle(holding, side, qty, price, fee)
        holding, cash, fees = result.holding, cash + result.cash_delta, fees + result.fee
        pos = portfolio.position("X")
        assert (holding.qty, holding.avg_price) == (pos.qty, pos.avg_price)
        assert cash == portfolio.cash
        mark = price
        assert cash + holding.qty * mark == portfolio.equity({"X": mark})
    # Gross realised PnL is the trades' net PnL with their fees added back (the portfolio
    # prorates fees across partial closes, a division; both sides carry 28 significant digits).
    gross = sum((t.pnl + t.fees for t in portfolio.trades), start=Decimal(0))
    assert abs(holding.realized_pnl - gross) < Decimal("1e-15")


def test_flip_opens_the_remainder_at_the_fill_price() -> None:
    long = settle(Holding(), Side.BUY, Decimal(10), Decimal(100), Decimal(1)).holding
    flipped = settle(long, Side.SELL, Decimal(15), Decimal(110), Decimal("1.5"))
    assert flipped.holding == Holding(Decimal(-5), Decimal(110), Decimal(100))
    assert flipped.cash_delta == Decimal("1648.5")
    assert flipped.realized_pnl == Decimal(100)


def test_partial_close_keeps_the_average_and_flat_resets_it() -> None:
    h = settle(Holding(), Side.SELL, Decimal(4), Decimal(50), Decimal(0)).holding
    h = settle(h, Side.BUY, Decimal(1), Decimal(40), Decimal(0)).holding
    assert (h.qty, h.avg_price, h.realized_pnl) == (Decimal(-3), Decimal(50), Decimal(10))
    h = settle(h, Side.BUY, Decimal(3), Decimal(60), Decimal(0)).holding
    assert h == Holding(Decimal(0), Decimal(0), Decimal(-20))


@pytest.mark.parametrize(("qty", "price", "fee"), [(0, 1, 0), (1, 0, 0), (1, 1, -1)])
def test_invalid_fill_is_refused(qty: int, price: int, fee: int) -> None:
    with pytest.raises(ValueError, match="invalid fill"):
        settle(Holding(), Side.BUY, Decimal(qty), Decimal(price), Decimal(fee))


def test_a_fee_in_the_base_asset_comes_out_of_the_position_and_cash_moves_by_the_notional() -> None:
    assert fee_currency("", "BTC", "USDT") is FeeCurrency.QUOTE
    assert fee_currency("USDT", "BTC", "USDT") is FeeCurrency.QUOTE
    assert fee_currency("BTC", "BTC", "USDT") is FeeCurrency.BASE
    assert fee_currency("BNB", "BTC", "USDT") is FeeCurrency.OTHER
    bought = settle_fee_in(
        Holding(), Side.BUY, Decimal("1"), Decimal("100"), Decimal("0.001"), FeeCurrency.BASE
    )
    assert bought.holding.qty == Decimal("0.999") and bought.cash_delta == Decimal(-100)
    assert bought.fee == Decimal("0.1")
    sold = settle_fee_in(
        bought.holding,
        Side.SELL,
        Decimal("0.5"),
        Decimal("100"),
        Decimal("0.001"),
        FeeCurrency.BASE,
    )
    assert sold.holding.qty == Decimal("0.498") and sold.cash_delta == Decimal(50)
    other = settle_fee_in(
        Holding(), Side.BUY, Decimal("1"), Decimal("100"), Decimal("0.01"), FeeCurrency.OTHER
    )
    assert (other.holding.qty, other.cash_delta, other.fee) == (Decimal(1), Decimal(-100), 0)
