"""The `sigma` command end to end: backtest, compare, errors, demo, listing, migrate."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from sigma.app import App
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
    trades = pd.read_csv(out / "trades.csv")
    assert len(trades) == summary["stats"]["n_trades"] > 0
    assert {"equity.csv", "equity.parquet", "trades.json"} <= {p.name for p in out.iterdir()}
    assert _count(workdir / "sigma.db", "bt_summary") == 1
    assert _count(workdir / "sigma.db", "bt_trades") == len(trades)


def test_backtest_exports_parquet_unless_told(workdir: Path) -> None:
    """One export format by default (Parquet, exact and the quickest to write), the others
    on request, none with `--export none`: the summary is always written."""
    base = ["backtest", "--data", "bars.csv", "--no-store"]
    assert runner.invoke(app, [*base, "--out", "d"]).exit_code == 0
    names = {p.name for p in (workdir / "d").iterdir()}
    assert names == {"report.html", "summary.json", "trades.parquet", "equity.parquet"}
    summary = json.loads((workdir / "d" / "summary.json").read_text())
    assert len(pd.read_parquet(workdir / "d" / "trades.parquet")) == summary["trades"] > 0
    assert runner.invoke(app, [*base, "--export", "none", "--out", "n"]).exit_code == 0
    assert {p.name for p in (workdir / "n").iterdir()} == {"report.html", "summary.json"}
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
