"""Issue 24: every bad value given to `sigma backtest` / `sigma optimize` ends in one line on
stderr naming what and where, exit status 2 and no traceback."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from sigma.cli.main import app
from sigma.feeds.synthetic import generate_bars, write_csv

runner = CliRunner()
NOT_ISO = "not an ISO 8601 time (e.g. 2024-01-31 or 2024-01-31T12:00Z)"

STRATEGY_THAT_RAISES = """
from sigma.strategies import Strategy

class Fragile(Strategy):
    name = "fragile"

    def on_bar(self):
        if self.bar_index == 7:
            {}["missing"]
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIGMA_DATABASE_URL", f"sqlite:///{tmp_path / 'sigma.db'}")
    monkeypatch.setenv("SIGMA_VAR_DIR", str(tmp_path / "var"))
    for var in ("SIGMA_CONFIG_FILE", "SIGMA_STRATEGY_PATHS"):
        monkeypatch.delenv(var, raising=False)
    frame, _ = generate_bars(600, seed=3, freq="1h")
    write_csv(frame, tmp_path / "bars.csv")
    return tmp_path


def one_line_error(result: Result) -> str:
    """The command's only stderr line, after checking the exit status and that no traceback
    was printed."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--commission", "-0.1"], "error: --commission: must be in [0, 0.1), got -0.1"),
        (["--commission-fixed", "-1"], "error: --commission-fixed: must be >= 0, got -1"),
        (["--slippage-bps", "-5"], "error: --slippage-bps: must be >= 0, got -5"),
        (["--lot-size", "0"], "error: --lot-size: must be > 0, got 0"),
        (["--lot-size", "many"], "error: --lot-size: not a number: 'many'"),
        (["--cash", "0"], "error: --cash: must be positive, got 0"),
        (["--leverage", "0.5"], "error: --leverage: must be in [1, 125], got 0.5"),
        (["--leverage", "lots"], "error: --leverage: not a number: 'lots'"),
        (
            ["--account", "spot", "--leverage", "2"],
            "error: --leverage: must be 1 on a spot account, got 2",
        ),
        (
            ["--leverage", "4", "--maintenance-margin", "0.3"],
            "error: --maintenance-margin: must be in [0, 1/leverage = 0.25), got 0.3",
        ),
        (
            ["--param", "allow_short=maybe"],
            "error: --param: sma_cross: parameter 'allow_short' must be one of true, false, 1, "
            "0, yes, no, got 'maybe'",
        ),
        (["--param", "fast=50"], "error: --param: sma_cross: fast (50) must be below slow (20)"),
        (["--cash", "1e30"], "error: --cash: must be between 0.0000000001 and 1,000,000,000,"),
        (["--cash", "1e-400"], "error: --cash: must be between 0.0000000001 and"),
        (["--start", "soon"], f"error: --start: {NOT_ISO}: 'soon'"),
        (["--end", "later"], f"error: --end: {NOT_ISO}: 'later'"),
        (["--start", "01/05/2024"], f"error: --start: {NOT_ISO}: '01/05/2024'"),
        (["--end", "now"], f"error: --end: {NOT_ISO}: 'now'"),
        (
            ["--start", "2024-01-20", "--end", "2024-01-05"],
            "error: --end: 2024-01-05 is before --start 2024-01-20",
        ),
        (
            ["--timeframe", "1m"],
            "error: --timeframe: timeframe '1m' is finer than the bars, which are 0 days "
            "01:00:00 apart: bars can be aggregated, not split",
        ),
        (["--timeframe", "fortnight"], "error: --timeframe: unknown resample rule 'fortnight'"),
        (["--strategy", "nope"], "error: --strategy: unknown strategy 'nope'; known: "),
        (
            ["--compare", "sma_cross,donchian_trend", "--param", "speed=3"],
            "error: --param: no strategy of --compare has parameter(s) speed",
        ),
    ],
)
def test_bad_options(workdir: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["backtest", "--data", "bars.csv", "--no-store", *args])
    assert one_line_error(result).startswith(message)


def test_a_symbol_the_data_does_not_hold(workdir: Path) -> None:
    frame, _ = generate_bars(50, seed=1, freq="1h")
    frame.reset_index().assign(symbol="BTC").to_csv(workdir / "btc.csv", index=False)
    result = runner.invoke(app, ["backtest", "--data", "btc.csv", "--symbol", "ETH"])
    assert one_line_error(result) == "error: btc.csv: no rows for symbol 'ETH' (found: BTC)"


@pytest.mark.parametrize(
    ("command", "out", "message"),
    [
        (["backtest", "--no-store"], "bars.csv", "error: --out: bars.csv is a file, not a folder"),
        (
            ["optimize", "--trials", "2", "--folds", "0"],
            "bars.csv/sub",
            "error: --out: cannot make the folder bars.csv/sub: Not a directory",
        ),
    ],
)
def test_an_out_folder_that_cannot_be_made_stops_before_the_run(
    workdir: Path, command: list[str], out: str, message: str
) -> None:
    before = (workdir / "bars.csv").read_bytes()
    result = runner.invoke(app, [*command, "--data", "bars.csv", "--out", out])
    assert one_line_error(result) == message
    assert (workdir / "bars.csv").read_bytes() == before
    assert not (workdir / "var" / "reports").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bars", "0"], "error: --bars: input should be greater than or equal to 1, got '0'"),
        (["--seed", "-1"], "error: --seed: input should be greater than or equal to 0, got '-1'"),
    ],
)
def test_bad_demo_options(workdir: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["demo", *args])
    assert one_line_error(result) == message
    assert not (workdir / "var" / "data").exists()


def test_a_semicolon_separated_file_says_so(workdir: Path) -> None:
    text = (workdir / "bars.csv").read_text()
    (workdir / "excel.csv").write_text(text.replace(",", ";").replace(".", ","))
    result = runner.invoke(app, ["backtest", "--data", "excel.csv", "--no-store"])
    assert one_line_error(result).startswith(
        "error: excel.csv: the header 'ts;open;high;low;close;volume' is one column, its "
        "fields separated by ';': SIGMA reads comma-separated CSV with '.' as the decimal point"
    )


def test_epoch_seconds_are_read_as_seconds(workdir: Path) -> None:
    frame, _ = generate_bars(600, seed=3, freq="1h")
    raw = frame.reset_index()
    raw["ts"] = raw["ts"].astype("int64") // 10**9
    raw.to_csv(workdir / "epoch.csv", index=False)
    result = runner.invoke(
        app,
        ["backtest", "--data", "epoch.csv", "--no-store", "--out", "e", "--start", "2024-01-02"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((workdir / "e" / "summary.json").read_text())
    assert summary["start"] == "2024-01-02T00:00:00Z"


def test_a_gzip_bomb_is_refused_by_the_uncompressed_limit(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGMA_DATA_MAX_UNCOMPRESSED_BYTES", str(1024**2))
    header = (workdir / "bars.csv").read_bytes()
    (workdir / "bomb.csv.gz").write_bytes(gzip.compress(header + b"\n" * (4 * 1024**2)))
    result = runner.invoke(app, ["backtest", "--data", "bomb.csv.gz", "--no-store"])
    assert one_line_error(result) == (
        "error: bomb.csv.gz: decompressed, the file holds more than 1.0 MiB "
        "(the limit, SIGMA_DATA_MAX_UNCOMPRESSED_BYTES)"
    )


def test_a_file_over_the_size_limit(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGMA_DATA_MAX_FILE_BYTES", "1000")
    result = runner.invoke(app, ["backtest", "--data", "bars.csv", "--no-store"])
    assert "over the limit of 1000 bytes (SIGMA_DATA_MAX_FILE_BYTES)" in one_line_error(result)


def test_a_huge_field_is_cut_in_the_message(workdir: Path) -> None:
    lines = (workdir / "bars.csv").read_text().splitlines()
    lines[3] = "x" * 5_000_000 + lines[3][20:]
    (workdir / "long.csv").write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["backtest", "--data", "long.csv", "--no-store"])
    line = one_line_error(result)
    assert line.startswith("error: long.csv line 4: cannot parse timestamp 'xxxx")
    assert len(line) < 600 and "more characters)" in line


def test_an_exception_in_a_strategy_names_strategy_symbol_bar_and_time(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = workdir / "plugins"
    plugins.mkdir()
    (plugins / "fragile.py").write_text(STRATEGY_THAT_RAISES)
    monkeypatch.setenv("SIGMA_STRATEGY_PATHS", str(plugins))
    args = ["backtest", "--strategy", "fragile", "--data", "bars.csv"]
    result = runner.invoke(app, [*args, "--no-store"])
    assert one_line_error(result) == (
        "error: strategy 'fragile' failed on bars at bar 7 (2024-01-01T07:00:00+00:00): "
        "KeyError: 'missing'"
    )
    debug = runner.invoke(app, [*args, "--no-store", "--debug"])
    assert debug.exit_code == 2
    assert "Traceback" in debug.stderr and "KeyError: 'missing'" in debug.stderr
    assert debug.stderr.splitlines()[-1].startswith("error: strategy 'fragile' failed")


def test_compare_applies_each_strategy_its_own_params(workdir: Path) -> None:
    result = runner.invoke(
        app,
        [
            "backtest", "--compare", "sma_cross,donchian_trend", "--data", "bars.csv",
            "--param", "fast=5", "--param", "slow=40", "--no-store", "--out", "cmp",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sma = json.loads((workdir / "cmp" / "sma_cross" / "summary.json").read_text())
    donchian = json.loads((workdir / "cmp" / "donchian_trend" / "summary.json").read_text())
    assert (sma["params"]["fast"], sma["params"]["slow"]) == (5, 40)
    assert "fast" not in donchian["params"]


def test_a_data_file_named_like_a_formula_is_quoted_in_trades_csv(workdir: Path) -> None:
    (workdir / "=2+3.csv").write_bytes((workdir / "bars.csv").read_bytes())
    result = runner.invoke(
        app, ["backtest", "--data", "=2+3.csv", "--no-store", "--export", "csv", "--out", "f"]
    )
    assert result.exit_code == 0, result.output
    trades = pd.read_csv(workdir / "f" / "trades.csv", dtype=str)
    assert len(trades) > 0 and set(trades["symbol"]) == {"'=2+3"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bound", "fast=1:5"], "error: --bound: bounds for 'fast' must lie within [2, 500]"),
        (["--bound", "fast=9:5"], "error: --bound: bounds for 'fast' go down: 9.0 > 5.0"),
        (["--bound", "speed=1:5"], "error: --bound: sma_cross has no parameter(s) speed"),
        (["--bound", "fast"], "error: --bound: expected NAME=LOW:HIGH, got 'fast'"),
        (["--bound", "fast=a:b"], "error: --bound: expected NAME=LOW:HIGH, got 'fast=a:b'"),
        (["--bound", "fast=nan:5"], "error: --bound: LOW and HIGH must be finite numbers"),
        (
            ["--bound", "fast=50:60", "--bound", "slow=10:20"],
            "error: --bound: no parameters within the bounds are valid for sma_cross: "
            "fast (60) must be below slow (20)",
        ),
        (["--trials", "0"], "error: --trials: must be at least 1, got 0"),
        (["--folds", "-1"], "error: --folds: must be 0 or more, got -1"),
        (["--workers", "0"], "error: --workers: must be at least 1, got 0"),
        (["--folds", "400"], "error: --folds: 600 bars are too few for 400 folds"),
        (["--method", "anneal"], "error: --method: use tpe or grid, got 'anneal'"),
        (["--strategy", "nope"], "error: --strategy: unknown strategy 'nope'"),
        (["--data", "missing.csv"], "error: missing.csv: file does not exist"),
        (["--data", ""], "error: --data: a data source is required"),
    ],
)
def test_bad_optimize_options(workdir: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["optimize", "--data", "bars.csv", "--trials", "2", *args])
    assert one_line_error(result).startswith(message)


def test_an_exception_in_a_strategy_stops_optimize_with_one_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = workdir / "plugins"
    plugins.mkdir()
    (plugins / "fragile.py").write_text(STRATEGY_THAT_RAISES)
    monkeypatch.setenv("SIGMA_STRATEGY_PATHS", str(plugins))
    monkeypatch.setenv("SIGMA_OPTIMIZE_WORKERS", "1")
    args = ["optimize", "--strategy", "fragile", "--data", "bars.csv", "--folds", "0"]
    result = runner.invoke(app, args)
    assert one_line_error(result).startswith(
        "error: strategy 'fragile' failed on OPT at bar 7 (2024-01-01T07:00:00+00:00): KeyError"
    )


def test_a_symbol_for_data_without_a_symbol_column_is_said(workdir: Path) -> None:
    result = runner.invoke(
        app, ["backtest", "--data", "bars.csv", "--symbol", "ETH", "--no-store", "--out", "n"]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "note: bars.csv has no symbol column: --symbol ETH names its bars, it selects none\n"
    )
    assert json.loads((workdir / "n" / "summary.json").read_text())["symbol"] == "ETH"


def test_one_line_joins_lines_and_cuts_long_messages() -> None:
    from sigma.cli.failures import MAX_MESSAGE_CHARS, one_line

    assert one_line(ValueError("two\n  lines\t")) == "two lines"
    assert one_line(ValueError()) == "ValueError"
    cut = one_line(ValueError("x" * 10_000))
    assert cut.startswith("x" * MAX_MESSAGE_CHARS) and cut.endswith("(9,500 more characters)")
