"""The `sigma` command end to end: backtest, compare, errors, demo, listing, migrate."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from sigma.bootstrap import App
from sigma.cli.main import app
from sigma.config import load_settings
from sigma.feeds.synthetic import generate_bars, write_csv
from sigma.store.db import session_scope
from sigma.store.params import set_params

runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIGMA_DATABASE_URL", f"sqlite:///{tmp_path / 'sigma.db'}")
    monkeypatch.setenv("SIGMA_VAR_DIR", str(tmp_path / "var"))
    for var in ("SIGMA_CONFIG_FILE", "SIGMA_STRATEGY_PATHS"):
        monkeypatch.delenv(var, raising=False)
    frame, _ = generate_bars(3000, seed=3, freq="1h")
    write_csv(frame, tmp_path / "bars.csv")
    return tmp_path


def _count(db: Path, table: str) -> int:
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        n = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    engine.dispose()
    return int(n)


def test_backtest_writes_report_exports_and_rows(workdir: Path) -> None:
    out = workdir / "run"
    result = runner.invoke(
        app,
        [
            "backtest",
            "--strategy",
            "sma_cross",
            "--data",
            "bars.csv",
            "--symbol",
            "SYN",
            "--param",
            "fast=5",
            "--param",
            "slow=40",
            "--cash",
            "5000",
            "--commission",
            "0.001",
            "--start",
            "2024-01-10",
            "--export",
            "CSV,json,parquet,csv",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "sma_cross on SYN" in result.output and "n_trades" in result.output
    html = (out / "report.html").read_text()
    assert "<svg" in html and "sma_cross" in html
    summary = json.loads((out / "summary.json").read_text())
    assert summary["params"] == {"fast": 5, "slow": 40, "allow_short": True}
    listed = pd.read_csv(out / "trades.csv")
    trades = listed[~listed["is_open"]]  # the position held at the end is listed last
    assert len(trades) == summary["stats"]["n_trades"] > 0
    assert listed["is_open"].tolist()[-1] == (summary["final_position"] != "0")
    assert {"equity.csv", "equity.parquet", "trades.json", "monthly.csv"} <= {
        p.name for p in out.iterdir()
    }
    assert "sigma-chart-data" in html and "monthly returns" in html.lower()
    assert _count(workdir / "sigma.db", "bt_summary") == 1
    assert _count(workdir / "sigma.db", "bt_trades") == len(trades)


def test_a_liquidated_run_says_so_and_stores_why(workdir: Path) -> None:
    """The issue's case: BTCUSD monthly (backtesting.py's file), sma_cross, a short the price
    runs over: the run stops at 0 at the liquidation, which the summary names."""
    source = Path(__import__("backtesting").__file__).parent / "test" / "BTCUSD.csv"
    (workdir / "btc.csv").write_text("ts" + source.read_text(), encoding="utf-8")
    result = runner.invoke(
        app,
        ["backtest", "--data", "btc.csv", "--commission", "0.001", "--out", "liq"],
    )
    assert result.exit_code == 0, result.output
    assert "liquidated at bar 88 (2019-05-31T00:00:00+00:00), closed at 8439.24" in " ".join(
        result.output.split()
    )
    summary = json.loads((workdir / "liq" / "summary.json").read_text())
    stats = summary["stats"]
    assert stats["liquidated"] is True and stats["liquidation_bar"] == 88
    assert stats["liquidation_ts"] == "2019-05-31T00:00:00+00:00"
    assert stats["equity_final"] == "0.00000"
    spot = runner.invoke(
        app,
        ["backtest", "--data", "btc.csv", "--account", "spot", "--no-store", "--out", "spot"],
    )
    assert spot.exit_code == 0, spot.output
    stats = json.loads((workdir / "spot" / "summary.json").read_text())["stats"]
    assert stats["liquidated"] is False and stats["account"] == "spot"
    assert stats["orders_refused_margin"] > 0


def test_portfolio_of_several_files_or_a_symbol_column(workdir: Path) -> None:
    other, _ = generate_bars(2000, seed=4, freq="1h")
    write_csv(other, workdir / "other.csv")
    files = runner.invoke(
        app,
        ["backtest", "--data", "bars.csv", "--data", "other.csv", "--no-store", "--out", "f"],
    )
    assert files.exit_code == 0, files.output
    assert "per symbol" in files.output
    total = json.loads((workdir / "f" / "summary.json").read_text())
    assert total["symbol"] == "portfolio" and total["stats"]["symbols"] == 2
    for name in ("bars", "other"):
        assert (workdir / "f" / name / "report.html").is_file()
        assert json.loads((workdir / "f" / name / "summary.json").read_text())["symbol"] == name
    html = (workdir / "f" / "report.html").read_text()
    assert "sma_cross on 2 symbols, one account" in html
    frames = []
    for name, path in (("AAA", "bars.csv"), ("BBB", "other.csv")):
        frame = pd.read_csv(workdir / path)
        frame["symbol"] = name
        frames.append(frame)
    pd.concat(frames).sort_values("ts", kind="stable").to_csv(workdir / "both.csv", index=False)
    column = runner.invoke(
        app, ["backtest", "--data", "both.csv", "--portfolio", "--no-store", "--out", "c"]
    )
    assert column.exit_code == 0, column.output
    stats = json.loads((workdir / "c" / "summary.json").read_text())["stats"]
    assert stats["n_trades"] == total["stats"]["n_trades"]
    assert stats["equity_final"] == total["stats"]["equity_final"]
    chosen = runner.invoke(
        app, ["backtest", "--data", "both.csv", "--symbol", "BBB,AAA", "--no-store", "--out", "s"]
    )
    assert chosen.exit_code == 0, chosen.output
    assert {p.name for p in (workdir / "s").iterdir() if p.is_dir()} == {"AAA", "BBB"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--data", "bars.csv", "--data", "bars.csv"],
            "error: --data: two sources name the same symbol: bars, bars",
        ),
        (
            ["--data", "bars.csv", "--data", "x.csv", "--symbol", "A"],
            "error: --symbol: give one symbol per --data source (2), or none; got 1",
        ),
        (["--data", "bars.csv", "--portfolio"], "error: --portfolio: bars.csv has no symbol"),
        (["--portfolio"], "error: --data: a data source is required"),
    ],
)
def test_bad_portfolio_options(workdir: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["backtest", "--no-store", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1].startswith(message)


def test_compare_parameter_sets_of_one_strategy(workdir: Path) -> None:
    result = runner.invoke(
        app,
        [
            "backtest", "--data", "bars.csv", "--no-store", "--out", "p", "--param", "slow=30",
            "--compare", "sma_cross:fast=5,sma_cross:fast=10:slow=40",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    first = json.loads((workdir / "p" / "sma_cross_fast=5_slow=30" / "summary.json").read_text())
    second = json.loads((workdir / "p" / "sma_cross_fast=10_slow=40" / "summary.json").read_text())
    assert (first["params"]["fast"], first["params"]["slow"]) == (5, 30)  # --param under its own
    assert (second["params"]["fast"], second["params"]["slow"]) == (10, 40)
    assert "sma_cross:fast=10:slow=40" in " ".join(result.output.split())
    page = (workdir / "p" / "comparison.html").read_text()
    assert "sma_cross:fast=5:slow=30" in page


def test_backtest_exports_only_what_it_is_told(workdir: Path) -> None:
    """No export file by default (`--export none`: the report and the summary), each format
    on request: the summary is always written."""
    base = ["backtest", "--data", "bars.csv", "--no-store"]
    assert runner.invoke(app, [*base, "--out", "n"]).exit_code == 0
    assert {p.name for p in (workdir / "n").iterdir()} == {"report.html", "summary.json"}
    assert runner.invoke(app, [*base, "--export", "parquet", "--out", "d"]).exit_code == 0
    names = {p.name for p in (workdir / "d").iterdir()}
    assert names == {
        "report.html",
        "summary.json",
        "trades.parquet",
        "equity.parquet",
        "monthly.parquet",
    }
    summary = json.loads((workdir / "d" / "summary.json").read_text())
    trades = pd.read_parquet(workdir / "d" / "trades.parquet")
    assert int((~trades["is_open"]).sum()) == summary["trades"] > 0
    assert runner.invoke(app, [*base, "--export", "none", "--out", "e"]).exit_code == 0
    assert {p.name for p in (workdir / "e").iterdir()} == {"report.html", "summary.json"}
    bad = runner.invoke(app, [*base, "--export", "csv,xlsx", "--out", "b"])
    assert bad.exit_code == 2
    assert "--export" in bad.output and "'xlsx'" in bad.output
    assert not (workdir / "b").exists()


def test_compare_ranks_and_recommends(workdir: Path) -> None:
    result = runner.invoke(
        app,
        [
            "backtest",
            "--compare",
            "sma_cross,donchian_trend,rsi_reversion",
            "--data",
            "bars.csv",
            "--timeframe",
            "4h",
            "--no-store",
            "--out",
            "cmp",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ranking" in result.output and "recommendation:" in result.output
    assert (workdir / "cmp" / "comparison.html").exists()
    assert (workdir / "cmp" / "donchian_trend" / "report.html").exists()
    assert not (workdir / "sigma.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "missing.csv"], "missing.csv"),
        (["--data", "bars.csv", "--strategy", "nope"], "unknown strategy 'nope'"),
        (["--data", "bars.csv", "--param", "fast=1"], "'fast'=1 is below its minimum 2"),
        (["--data", "bars.csv", "--start", "2030-01-01"], "bars.csv: no rows from 2030-01-01"),
    ],
)
def test_bad_input_exits_2_with_a_message(workdir: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["backtest", "--no-store", *args])
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "a data source is required"),
        (["--data", "bars.csv", "--param", "fast"], "expected key=value"),
        (["--data", "bars.csv", "--cash", "lots"], "not a number"),
        (["--data", "bars.csv", "--cash", "-5"], "must be positive"),
        (["--data", "bars.csv", "--commission", "NaN"], "must be finite"),
    ],
)
def test_bad_options_are_usage_errors(workdir: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["backtest", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_broken_data_row_is_named(workdir: Path) -> None:
    lines = (workdir / "bars.csv").read_text().splitlines()
    cells = lines[5].split(",")
    cells[4] = "nan"  # close
    lines[5] = ",".join(cells)
    (workdir / "bad.csv").write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["backtest", "--data", "bad.csv", "--no-store"])
    assert result.exit_code == 2
    assert "bad.csv line 6" in result.output


def test_plugin_folder_strategy_runs_and_broken_one_is_reported(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = workdir / "plugins"
    plugins.mkdir()
    (plugins / "always_long.py").write_text(
        "from sigma.strategies import Strategy\n"
        "class AlwaysLong(Strategy):\n"
        "    name = 'always_long'\n"
        "    def on_bar(self):\n"
        "        self.go_long()\n"
    )
    (plugins / "broken.py").write_text("import does_not_exist\n")
    monkeypatch.setenv("SIGMA_STRATEGY_PATHS", str(plugins))
    result = runner.invoke(
        app,
        ["backtest", "--strategy", "always_long", "--data", "bars.csv", "--no-store", "--out", "p"],
    )
    assert result.exit_code == 0, result.output
    assert "plugin skipped" in result.output and "broken.py" in result.output
    listing = runner.invoke(app, ["strategies", "-v"])
    assert "always_long" in listing.output and "fast=10 [2..500]" in listing.output


def test_check_lookahead_passes_builtins_and_stops_a_cheat(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = workdir / "plugins"
    plugins.mkdir()
    (plugins / "cheat.py").write_text(
        "import numpy as np\n"
        "from sigma.strategies import Strategy\n"
        "def tomorrow(values):\n"
        "    return np.append(values[1:], np.nan)\n"
        "class Cheat(Strategy):\n"
        "    name = 'cheat'\n"
        "    def init(self):\n"
        "        self.next_close = self.indicator(tomorrow, self.data.close)\n"
        "    def on_bar(self):\n"
        "        if self.next_close[-1] > self.data.close[-1]:\n"
        "            self.go_long()\n"
        "        else:\n"
        "            self.go_flat()\n"
    )
    monkeypatch.setenv("SIGMA_STRATEGY_PATHS", str(plugins))
    base = ["backtest", "--data", "bars.csv", "--no-store", "--check-lookahead"]
    clean = runner.invoke(app, [*base, "--compare", "sma_cross,donchian_trend", "--out", "c"])
    assert clean.exit_code == 0, clean.output
    assert "look-ahead check: sma_cross reads no future bar" in clean.output
    assert "look-ahead check: donchian_trend reads no future bar" in clean.output
    cheat = runner.invoke(app, [*base, "--strategy", "cheat", "--out", "x"])
    assert cheat.exit_code == 1
    lines = [line for line in cheat.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "look-ahead in cheat: indicator 'next_close' at bar 299" in lines[0]
    assert not (workdir / "x" / "report.html").exists()  # no report of a fiction


def test_demo_and_migrate(workdir: Path) -> None:
    result = runner.invoke(app, ["demo", "--bars", "3000", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "recommendation:" in result.output
    assert _count(workdir / "sigma.db", "bt_summary") == 4
    migrated = runner.invoke(app, ["migrate"])
    assert migrated.exit_code == 0 and "database ready" in migrated.output


def test_long_runs_show_progress(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sigma.cli.backtest as cli

    seen: list[tuple[int, int]] = []
    original = cli.run_backtest

    def spy(*args: object, **kwargs: object) -> object:
        report = kwargs["progress"]
        kwargs["progress"] = lambda done, total: (seen.append((done, total)), report(done, total))
        return original(*args, **kwargs)

    monkeypatch.setattr(cli, "PROGRESS_MIN_BARS", 1000)
    monkeypatch.setattr(cli, "run_backtest", spy)
    result = runner.invoke(app, ["backtest", "--data", "bars.csv", "--no-store", "--out", "l"])
    assert result.exit_code == 0, result.output
    assert seen[0] == (0, 3000) and seen[-1] == (3000, 3000)


@pytest.mark.pg
def test_backtest_from_a_postgres_table_into_postgres(
    workdir: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same command on PostgreSQL: history from `pg:TABLE`, results into bt_summary."""
    import uuid

    frame, _ = generate_bars(2000, seed=9, freq="1h")
    table = f"hist_{uuid.uuid4().hex[:8]}"
    engine = create_engine(pg_url)
    frame.reset_index().assign(symbol="PGX").to_sql(table, engine, index=False)
    monkeypatch.setenv("SIGMA_DATABASE_URL", pg_url)
    result = runner.invoke(
        app, ["backtest", "--data", f"pg:{table}", "--symbol", "PGX", "--out", "pgrun"]
    )
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        row = conn.execute(text("SELECT id, stats FROM bt_summary WHERE symbol = 'PGX'")).one()
        n = conn.execute(
            text("SELECT count(*) FROM bt_trades WHERE summary_id = :i"), {"i": row.id}
        ).scalar_one()
    engine.dispose()
    assert n == row.stats["n_trades"] > 0


def test_up_refuses_to_start_on_stored_parameters_the_strategy_refuses(workdir: Path) -> None:
    sigma_app = App(load_settings())
    with session_scope(sigma_app.sessions) as session:
        set_params(session, "sma_cross", "BTC", {"slow": 5000}, "old bounds", "alice")
    sigma_app.close()
    result = runner.invoke(app, ["up", "--only", "bot"])
    assert result.exit_code == 2
    assert result.output.endswith(
        "sigma: not started: the stored parameters of sma_cross on BTC are not valid for the "
        "strategy: parameter 'slow'=5000 is above its maximum 2000; store a valid set with "
        "PUT /api/params/sma_cross/BTC (`sigma api` serves it alone)\n"
    )


HOLD_TWO = (
    "from sigma.strategies import Strategy\n"
    "class HoldTwo(Strategy):\n"
    "    name = 'hold_two'\n"
    "    def decision_start(self, *, final):\n"  # bought on bar 0 (see tests/scripted.py)
    "        return 0\n"
    "    def on_bar(self):\n"
    "        if self.bar_index == 0:\n"
    "            self.buy(2)\n"
)
FUNDED_CSV = (
    "ts,open,high,low,close,volume,funding_rate\n"
    "2024-01-01T00:00:00Z,100,101,99,100.5,1,0.01\n"
    "2024-01-01T00:01:00Z,100.5,102,100,101.25,1,\n"
    "2024-01-01T00:02:00Z,101.25,103,101,102.37,1,0.0005\n"
    "2024-01-01T00:03:00Z,102.37,103,99,99.91,1,-0.00025\n"
    "2024-01-01T00:04:00Z,99.91,101,99,100.03,1,\n"
    "2024-01-01T00:05:00Z,100.03,101,99,100.77,1,0.0003\n"
)


def test_a_funding_column_of_a_csv_is_charged_to_the_cent(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = workdir / "plugins"
    plugins.mkdir()
    (plugins / "hold_two.py").write_text(HOLD_TWO)
    monkeypatch.setenv("SIGMA_STRATEGY_PATHS", str(plugins))
    (workdir / "funded.csv").write_text(FUNDED_CSV)
    base = ["backtest", "--strategy", "hold_two", "--data", "funded.csv", "--no-store"]

    def funding_paid(out: str, *options: str) -> Decimal:
        result = runner.invoke(app, [*base, "--out", out, *options])
        assert result.exit_code == 0, result.output
        summary = json.loads((workdir / out / "summary.json").read_text())
        return Decimal(summary["stats"]["funding_paid"])

    # 2 units bought at bar 1's open pay qty·close·rate at each later close (bar 0's is before).
    owed = 2 * (
        Decimal("102.37") * Decimal("0.0005")
        - Decimal("99.91") * Decimal("0.00025")
        + Decimal("100.77") * Decimal("0.0003")
    )
    assert funding_paid("fut", "--account", "futures", "--leverage", "2") == owed
    assert funding_paid("margin") == owed  # the default account
    assert funding_paid("spot", "--account", "spot") == 0
    # 2-minute bars (00:00, 00:02, 00:04) pay the sum of their rates: bought at 00:02, held.
    resampled = 2 * Decimal("99.91") * Decimal("0.00025")
    resampled += 2 * Decimal("100.77") * Decimal("0.0003")
    assert funding_paid("m2", "--timeframe", "2m") == resampled


def test_a_bad_funding_rate_is_refused_by_line_and_column(workdir: Path) -> None:
    (workdir / "bad.csv").write_text(FUNDED_CSV.replace(",-0.00025", ",abc"))
    result = runner.invoke(app, ["backtest", "--data", "bad.csv", "--no-store"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        "error: bad.csv line 5: funding_rate: cannot parse number 'abc'"
    )
