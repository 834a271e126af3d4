"""Parameters, series views, indicators and plugin loading."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sigma.research.backtest import run_backtest
from sigma.strategies import Param, Strategy, crossed_above, crossed_below, load_strategies
from sigma.strategies import indicators as ind
from sigma.strategies.builtin import BollingerBreakout, DonchianTrend, RsiReversion, SmaCross
from sigma.strategies.registry import StrategyRegistry
from sigma.strategies.series import Cursor, Data, Series


def test_params_coerce_and_bounds() -> None:
    s = SmaCross(fast="5", slow=30.0, allow_short="no")
    assert (s.fast, s.slow, s.allow_short) == (5, 30, False)
    assert s.params == {"fast": 5, "slow": 30, "allow_short": False}
    with pytest.raises(ValueError, match="'fast'=1 is below its minimum 2"):
        SmaCross(fast=1)
    with pytest.raises(ValueError, match="'slow'=5000 is above its maximum 2000"):
        SmaCross(slow=5000)
    with pytest.raises(ValueError, match="'fast' must be int, got '2.5'"):
        SmaCross(fast="2.5")
    with pytest.raises(ValueError, match="no parameter\\(s\\) speed"):
        SmaCross(speed=3)
    with pytest.raises(ValueError, match="fast \\(30\\) must be below slow \\(20\\)"):
        SmaCross(fast=30)
    with pytest.raises(ValueError, match="oversold"):
        RsiReversion(oversold=45, exit_level=40)
    with pytest.raises(ValueError, match="exit \\(30\\) must not exceed entry"):
        DonchianTrend(exit=30)
    assert Param(Decimal("0.5")).coerce("x", "0.25") == Decimal("0.25")
    assert Param(1.5, low=0).coerce("x", 2) == 2.0
    assert Param("a").coerce("x", 3) == "3"
    assert Param(True).coerce("x", True) is True
    assert set(BollingerBreakout.param_specs()) == {"period", "k", "allow_short"}


@pytest.mark.parametrize("default", [10, 1.5, Decimal("0.5")])
@pytest.mark.parametrize("flag", [True, False])
def test_a_flag_is_not_a_number(default: object, flag: bool) -> None:
    # JSON `true` is an int to Python: it must not pass for a period of 1.
    kind = type(default).__name__
    with pytest.raises(ValueError, match=f"'p' must be {kind}, got {flag}"):
        Param(default).coerce("p", flag)


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("FALSE", False), ("1", True), ("0", False), (" Yes ", True), ("no", False)],
)
def test_boolean_params_read_only_plain_words(text: str, value: bool) -> None:
    assert SmaCross(allow_short=text).allow_short is value


@pytest.mark.parametrize("text", ["maybe", "on", "off", "", "2", "y"])
def test_other_boolean_words_are_refused_not_read_as_false(text: str) -> None:
    with pytest.raises(ValueError) as info:
        SmaCross(allow_short=text)
    assert str(info.value) == (
        f"parameter 'allow_short' must be one of true, false, 1, 0, yes, no, got {text!r}"
    )


@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="'k' must be a finite number"):
        BollingerBreakout(k=text)
    with pytest.raises(ValueError, match="'x' must be a finite number"):
        Param(Decimal(1)).coerce("x", text)


def test_a_long_value_is_cut_in_the_message() -> None:
    with pytest.raises(ValueError) as info:
        SmaCross(fast="9" * 10_000 + "x")
    assert len(str(info.value)) < 300 and "more characters)" in str(info.value)


def test_series_view_hides_the_future() -> None:
    cursor = Cursor()
    s = Series(np.arange(5.0), cursor, "x")
    cursor.i = 2
    assert (len(s), s[-1], s[-3], s[0], float(s)) == (3, 2.0, 0.0, 0.0, 2.0)
    assert list(s[:]) == [0.0, 1.0, 2.0] and list(s.to_numpy()) == [0.0, 1.0, 2.0]
    with pytest.raises(IndexError, match="beyond the current bar"):
        s[3]
    with pytest.raises(IndexError, match="before the first bar"):
        s[-4]
    assert "len=3" in repr(s)


def test_data_append_grows_storage() -> None:
    zeros = np.zeros(0)
    cols = dict.fromkeys(("open", "high", "low", "close", "volume"), zeros)
    data = Data(cols, np.zeros(0, dtype="datetime64[ns]"), Cursor())
    for k in range(40):
        data.append(np.datetime64("2024-01-01") + k, dict.fromkeys(cols, float(k)))
    data.cursor.i = 39
    assert len(data) == 40 and data.close[-1] == 39.0 and data.high[0] == 0.0
    assert data.open[-2] == 38.0 and data.low[-1] == 39.0 and data.volume[-1] == 39.0
    assert len(data.ts) == 40
    frame = data.frame(35)
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.index.name == "ts" and str(frame.index.tz) == "UTC"
    assert frame.index[0] == pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=35)
    assert frame["close"].tolist() == [35.0, 36.0, 37.0, 38.0, 39.0]
    assert data.frame(0, 2)["open"].tolist() == [0.0, 1.0]
    # A snapshot: the live window moving on (oldest bars dropped) leaves it as it was.
    data.drop_oldest(30)
    assert frame["close"].tolist() == [35.0, 36.0, 37.0, 38.0, 39.0]
    assert frame.index[0] == pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=35)


def test_indicators_against_pandas_and_causality() -> None:
    x = np.random.default_rng(1).normal(0, 1, 300).cumsum() + 100
    s = pd.Series(x)
    np.testing.assert_allclose(ind.sma(x, 7), s.rolling(7).mean(), equal_nan=True)
    np.testing.assert_allclose(ind.rolling_max(x, 5), s.rolling(5).max(), equal_nan=True)
    np.testing.assert_allclose(ind.rolling_min(x, 5), s.rolling(5).min(), equal_nan=True)
    mid, up, lo = ind.bollinger(x, 10, 2.0)
    np.testing.assert_allclose(up - mid, 2 * s.rolling(10).std(ddof=0), equal_nan=True)
    np.testing.assert_allclose(mid - lo, up - mid, equal_nan=True)
    np.testing.assert_allclose(ind.shifted(x, 2)[2:], x[:-2])
    r = ind.rsi(x, 14)
    assert np.isnan(r[:14]).all() and ((r[14:] >= 0) & (r[14:] <= 100)).all()
    # Causal: computing on a prefix gives the same values as on the whole history.
    for fn in (lambda v: ind.sma(v, 9), lambda v: ind.rsi(v, 9), lambda v: ind.bollinger(v)[1]):
        np.testing.assert_allclose(fn(x[:150]), fn(x)[:150], equal_nan=True)
    assert np.isnan(ind.sma(x[:3], 5)).all() and np.isnan(ind.rsi(x[:3], 5)).all()
    assert np.isnan(ind.rolling_std(x[:2], 5)).all() and np.isnan(ind.shifted(x[:2], 5)).all()
    assert ind.rsi(np.arange(30.0), 5)[-1] == 100.0
    assert ind.rsi(np.full(30, 7.0), 5)[-1] == 50.0
    with pytest.raises(ValueError, match="period must be >= 1"):
        ind.sma(x, 0)


def test_crossings() -> None:
    cursor = Cursor()
    a = Series(np.array([1.0, 3.0, 1.0]), cursor)
    b = Series(np.array([2.0, 2.0, 2.0]), cursor)
    cursor.i = 0
    assert not crossed_above(a, b) and not crossed_below(a, b)
    cursor.i = 1
    assert crossed_above(a, b) and crossed_above(a, 2.0) and not crossed_below(a, b)
    cursor.i = 2
    assert crossed_below(a, b) and crossed_below(a, 2.0)


def test_crossings_of_a_whole_history_are_those_of_each_bar() -> None:
    # Over a history that stays as it is (`cursor.final`, a backtest), a pair's crossings are
    # computed for every bar at once: the same answers as comparing bar by bar, NaN included,
    # before the first bar too; a second partner of the same series is compared bar by bar.
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(0, 1, 300), 1)
    x[[5, 6, 40, 41, 42]] = np.nan
    y = np.round(rng.normal(0, 1, 300), 1)
    z = np.round(rng.normal(0, 1, 300), 1)
    expected: dict[str, list[bool]] = {}
    for final in (False, True):
        cursor = Cursor()
        cursor.final = final
        a, b, c = Series(x, cursor), Series(y, cursor), Series(z, cursor)
        answers = []
        for i in range(-1, len(x)):
            cursor.i = i
            answers += [
                crossed_above(a, b), crossed_below(a, b), crossed_above(b, a),
                crossed_below(b, a), crossed_above(a, c), crossed_below(c, a),
            ]  # fmt: skip
        expected[str(final)] = answers
        assert all(type(answer) is bool for answer in answers)
        assert bool(a._crossed) == final
    assert expected["True"] == expected["False"] and any(expected["True"])


def test_a_series_made_on_every_bar_is_compared_bar_by_bar() -> None:
    # Its crossings would be computed over the whole history on every bar: a pair's are
    # kept only when it is asked about on a second bar.
    cursor = Cursor()
    cursor.final = True
    x, y = np.array([1.0, 3.0, 1.0, 3.0]), np.array([2.0, 2.0, 2.0, 2.0])
    b = Series(y, cursor)
    answers = []
    for i in range(4):
        cursor.i = i
        a = Series(x, cursor)
        answers.append((crossed_above(a, b), crossed_below(a, b), crossed_above(b, a)))
        assert not a._crossed and not b._crossed
    false = (False, False, False)
    assert answers == [false, (True, False, False), (False, True, True), (True, False, False)]


def test_go_long_and_go_short_place_the_orders_their_fields_say() -> None:
    # The reverse and entry orders are built positionally (fast): the same orders as built
    # by field name.
    from sigma.domain import Order

    close = 100 + np.sin(np.arange(120) / 4.0) * 10
    index = pd.date_range("2024-01-01", periods=120, freq="1min", tz="UTC", name="ts")
    bars = pd.DataFrame(
        {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 1.0},
        index=index,
    )
    _, engine = run_backtest(SmaCross(fast=3, slow=8), bars, symbol="X")
    reverse = next(o for o in engine.orders if o.tag == "reverse")
    enter = next(o for o in engine.orders if o.tag == "enter")
    fields = ("created_at", "client_order_id", "status", "filled_qty")
    assert reverse == Order(
        symbol="X", side=reverse.side, reduce_only=True, strategy="sma_cross", tag="reverse",
        **{name: getattr(reverse, name) for name in fields},
    )  # fmt: skip
    assert enter == Order(
        symbol="X", side=enter.side, equity_fraction=Decimal("1.0"), strategy="sma_cross",
        tag="enter", **{name: getattr(enter, name) for name in fields},
    )  # fmt: skip


def test_crossings_follow_values_that_change() -> None:
    cursor = Cursor()
    cursor.final = True
    a = Series(np.array([1.0, 3.0, 1.0]), cursor)
    b = Series(np.array([2.0, 2.0, 2.0]), cursor)
    cursor.i = 1
    assert crossed_above(a, b) and not crossed_below(a, b)
    b.values = np.array([0.0, 0.0, 0.0])  # an indicator recomputed
    assert not crossed_above(a, b)
    a._values[:] = [3.0, 1.0, 1.0]  # a live bar written in place
    a.changed()
    assert crossed_below(a, b) is False and crossed_above(b, a) is False
    b._values[:] = [5.0, 0.0, 0.0]
    b.changed()
    assert crossed_above(a, b) and crossed_below(b, a)


def test_indicator_length_mismatch_is_reported() -> None:
    class Bad(Strategy):
        name = "bad"

        def init(self) -> None:
            self.indicator(lambda c: c[:-1], self.data.close)

    from sigma.research.backtest import run_backtest

    frame = pd.DataFrame(
        {"open": [1.0, 1.0], "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0},
        index=pd.date_range("2024", periods=2, tz="UTC", name="ts"),
    )
    from sigma.engine.engine import StrategyFailed

    with pytest.raises(
        StrategyFailed, match=r"in init\(\): ValueError: .* returned 1 values for 2"
    ):
        run_backtest(Bad(), frame, symbol="X")


def test_plugin_folder_loads_good_and_reports_broken(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(
        textwrap.dedent("""
        from sigma.strategies import Strategy, Param
        class Momentum(Strategy):
            name = "momentum"
            lookback = Param(5, low=1, high=50)
    """)
    )
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "clash.py").write_text(
        textwrap.dedent("""
        from sigma.strategies import Strategy
        class Other(Strategy):
            name = "sma_cross"
    """)
    )
    (tmp_path / "_private.py").write_text("raise SystemExit\n")
    reg = load_strategies([tmp_path, tmp_path / "missing"], entry_points_group=False)
    assert "momentum" in reg.names and reg.create("momentum", lookback=7).params == {"lookback": 7}
    assert "RuntimeError: boom at import" in reg.errors[str(tmp_path / "broken.py")]
    assert "already taken" in reg.errors[str(tmp_path / "clash.py")]
    assert "does not exist" in reg.errors[str(tmp_path / "missing")]
    with pytest.raises(KeyError, match="unknown strategy 'nope'; known: bollinger_breakout"):
        reg.get("nope")


def test_registry_rejects_non_strategies_and_nameless() -> None:
    reg = StrategyRegistry()
    reg.add(int, "x")
    reg.add(type("Nameless", (Strategy,), {}), "y")
    assert "not a Strategy subclass" in reg.errors["x"]
    assert "has no `name`" in reg.errors["y"]


def test_entry_point_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    import sigma.strategies.registry as registry

    eps = [
        EntryPoint("good", "sigma.strategies.builtin:SmaCross", registry.ENTRY_POINT_GROUP),
        EntryPoint("broken", "no_such_module:Thing", registry.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: eps)
    reg = load_strategies()
    assert "sma_cross" in reg.names
    (origin,) = [k for k in reg.errors if "broken" in k]
    assert "ModuleNotFoundError" in reg.errors[origin]


def test_series_reads_follow_live_writes() -> None:
    # A strategy reads a Series through a float copy of its array: every write the engine
    # makes (a live bar, the window moving on, indicators recomputed) must show through it.
    zeros = np.zeros(0)
    cols = dict.fromkeys(("open", "high", "low", "close", "volume"), zeros)
    data = Data(cols, np.zeros(0, dtype="datetime64[ns]"), Cursor())
    for k in range(20):
        data.append(np.datetime64("2024-01-01") + k, dict.fromkeys(cols, float(k)))
        data.cursor.i = k
        assert data.close[-1] == float(k) and data.close[0] == 0.0  # read after every append
    data.drop_oldest(15)
    data.cursor.i = len(data) - 1
    assert (len(data), data.close[0], data.close[-1]) == (5, 15.0, 19.0)
    data.append(np.datetime64("2024-02-01"), dict.fromkeys(cols, 99.0))
    data.cursor.i = len(data) - 1
    assert data.close[-1] == 99.0 and data.close[-2] == 19.0
    indicator = Series(np.array([1.0, 2.0]), Cursor(), "ind")
    indicator._cursor.i = 1
    assert indicator[-1] == 2.0
    indicator.values = np.array([5.0, 6.0])
    assert indicator[-1] == 6.0 and isinstance(indicator[-1], float)


def test_a_finished_backtest_frees_the_float_copies_and_still_reads() -> None:
    # The run reads its series through float copies (32 MB per series of a million bars);
    # once it is over they go, and a later read gives the same values from the arrays.
    close = 100 + np.sin(np.arange(200) / 5.0) * 10
    index = pd.date_range("2024-01-01", periods=200, freq="1min", tz="UTC", name="ts")
    bars = pd.DataFrame(
        {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 1.0},
        index=index,
    )
    strategy = SmaCross(fast=3, slow=8)
    result, engine = run_backtest(strategy, bars, symbol="X")
    assert result.trades
    assert strategy.fast_ma._floats is None and engine.data.close._floats is None
    assert strategy.fast_ma[-1] == ind.sma(close, 3)[-1] and engine.data.close[-1] == close[-1]


def test_crossings_of_other_cursors_and_numbers() -> None:
    cursor, other = Cursor(), Cursor()
    a = Series(np.array([1.0, 3.0, 1.0]), cursor)
    b = Series(np.array([2.0, 2.0, 2.0]), other)
    cursor.i = other.i = 1
    assert crossed_above(a, b) and not crossed_below(a, b)
    assert crossed_above(a, np.float64(2.0)) is True and crossed_below(a, 2) is False
    other.i = 0  # b has one bar only: its previous value does not exist
    with pytest.raises(IndexError, match="before the first bar"):
        crossed_above(a, b)
    nan = Series(np.array([np.nan, 3.0]), cursor)
    assert not crossed_above(nan, 2.0) and not crossed_below(a, nan)
