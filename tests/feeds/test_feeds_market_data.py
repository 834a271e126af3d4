"""Files <-> the `bars` table, gaps and the store summary, on SQLite and PostgreSQL, and the
`sigma data` file commands through the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from sigma.cli.data import when
from sigma.cli.main import app
from sigma.feeds.errors import DataError
from sigma.feeds.gaps import find_gaps, missing_bars, timeframe_step
from sigma.feeds.loaders import load_bars, source_symbols
from sigma.feeds.market_data import export_file, import_file, report_series
from sigma.store import init_db, session_factory, session_scope
from sigma.store.bar_catalog import last_bar_time
from sigma.store.models import BarRecord
from sigma.venues.history import DownloadError, open_exchange, to_markets

CSV = """ts,symbol,open,high,low,close,volume
2024-01-01T00:00:00Z,BTC,42000.5,42100,41950.25,42050,12.5
2024-01-01T00:01:00Z,BTC,42050,42080,42010,42011.75,3.1
2024-01-01T00:00:00Z,ETH,2300,2310,2290,2305.123456789,1
2024-01-01T00:01:00Z,ETH,2305,2306,2301,2302,0
2024-01-01T00:04:00Z,BTC,42011,42020,42000,42001,1
"""


@pytest.fixture
def sessions(db_url: str) -> Iterator[Any]:
    engine = init_db(db_url)
    yield session_factory(engine)
    engine.dispose()


def _file(tmp_path: Path, text: str, name: str = "bars.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _stored(sessions: Any) -> list[tuple[str, str, Decimal]]:
    with session_scope(sessions) as session:
        rows = session.execute(
            select(BarRecord.symbol, BarRecord.timeframe, BarRecord.close).order_by(
                BarRecord.symbol, BarRecord.ts
            )
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_import_per_symbol_is_exact_and_idempotent(sessions: Any, tmp_path: Path) -> None:
    source = _file(tmp_path, CSV)
    stored = import_file(sessions, source)
    assert [(s.symbol, s.timeframe, s.bars) for s in stored] == [("BTC", "1m", 3), ("ETH", "1m", 2)]
    assert _stored(sessions)[3] == ("ETH", "1m", Decimal("2305.123456789"))
    import_file(sessions, source)  # again: the same bars, replaced
    assert len(_stored(sessions)) == 5
    only = import_file(sessions, source, symbol="ETH", timeframe="1m")
    assert [s.symbol for s in only] == ["ETH"]

    (btc, eth) = report_series(sessions, with_gaps=True)
    assert (btc.series.count, btc.missing, eth.missing) == (3, 2, 0)
    assert [(g.first.minute, g.last.minute, g.missing) for g in btc.gaps] == [(2, 3, 2)]
    with session_scope(sessions) as session:
        assert last_bar_time(session, "BTC", "1m") == pd.Timestamp("2024-01-01T00:04:00Z")
        assert last_bar_time(session, "BTC", "1h") is None


def test_a_bad_row_names_file_line_column_and_imports_nothing(
    sessions: Any, tmp_path: Path
) -> None:
    bad = CSV.replace("2305,2306,2301,2302", "2305,2300,2301,2302")
    source = _file(tmp_path, bad)
    with pytest.raises(DataError, match=r"bars\.csv line 5: high \(2300\.0\) < low") as err:
        import_file(sessions, source)
    assert (err.value.line, err.value.column) == (5, "high")
    assert _stored(sessions) == []  # BTC was fine, and still nothing was written
    blank = _file(tmp_path, CSV.replace(",ETH,2300", ",,2300"), "blank.csv")
    with pytest.raises(DataError, match="line 4: symbol is missing"):
        import_file(sessions, blank)


def test_import_aggregates_finer_bars_and_refuses_what_does_not_fit(
    sessions: Any, tmp_path: Path
) -> None:
    lines = ["timestamp,open,high,low,close"]
    for minute in range(120):
        epoch = 1_704_067_200 + 60 * minute
        lines.append(f"{epoch},{100 + minute},{101 + minute},{99 + minute},{100.5 + minute}")
    source = _file(tmp_path, "\n".join(lines) + "\n", "one.csv")
    with pytest.raises(DataError, match="no symbol column"):
        import_file(sessions, source)
    (hourly,) = import_file(sessions, source, symbol="SOL", timeframe="1h")
    assert (hourly.bars, hourly.timeframe) == (2, "1h")
    (plain,) = import_file(sessions, source, symbol="SOL")
    assert (plain.timeframe, plain.bars) == ("1m", 120)
    with pytest.raises(DataError, match="coarser than the timeframe '30s'"):
        import_file(sessions, source, symbol="SOL", timeframe="30s")
    with pytest.raises(DataError, match="resample rule '1W'"):
        import_file(sessions, source, symbol="SOL", timeframe="1W")
    odd = _file(tmp_path, "ts,open,high,low,close\n2024-01-01T00:00:30Z,1,1,1,1\n", "odd.csv")
    with pytest.raises(DataError, match="not on the 1m grid"):
        import_file(sessions, odd, symbol="X", timeframe="1m")
    with pytest.raises(DataError, match="one bar tells no bar size"):
        import_file(sessions, odd, symbol="X")


@pytest.mark.parametrize("name", ["out.csv", "out.csv.gz", "out.parquet"])
def test_export_reads_back_as_imported(sessions: Any, tmp_path: Path, name: str) -> None:
    import_file(sessions, _file(tmp_path, CSV))
    target = tmp_path / name
    written = export_file(sessions, target, "BTC", "1m")
    assert written.bars == 3
    frame = load_bars(str(target))
    assert list(frame["close"]) == [42050.0, 42011.75, 42001.0]
    window = export_file(
        sessions, target, "BTC", "1m", start=pd.Timestamp("2024-01-01T00:01Z"), end=None
    )
    assert window.bars == 2
    with pytest.raises(DataError) as info:
        export_file(sessions, target, "BTC", "1h")
    assert info.value.reason == (
        "no 1h bars of BTC stored in that window; stored: 1m from 2024-01-01 00:00:00+00:00 "
        "to 2024-01-01 00:04:00+00:00 (-t picks one)"
    )
    with pytest.raises(DataError) as info:
        export_file(sessions, target, "SOL", "1m")
    assert info.value.reason == "no bars of SOL are stored (`sigma data list` shows what is)"
    with pytest.raises(DataError, match="unsupported file type"):
        export_file(sessions, tmp_path / "out.json", "BTC", "1m")


def test_export_makes_its_folder_and_names_what_it_cannot_write(
    sessions: Any, tmp_path: Path
) -> None:
    import_file(sessions, _file(tmp_path, CSV))
    nested = tmp_path / "new" / "folder" / "btc.csv.gz"
    assert export_file(sessions, nested, "BTC", "1m").bars == 3
    assert load_bars(str(nested))["close"].tolist() == [42050.0, 42011.75, 42001.0]
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(DataError, match=r"folder\.csv: is a directory, not a file$"):
        export_file(sessions, tmp_path / "folder.csv", "BTC", "1m")
    under_a_file = tmp_path / "bars.csv" / "btc.csv"
    with pytest.raises(DataError, match=r"bars\.csv is a file, not a folder$"):
        export_file(sessions, under_a_file, "BTC", "1m")
    with pytest.raises(DataError, match=r"cannot make the folder /proc/sigma/x: No such file"):
        export_file(sessions, Path("/proc/sigma/x/btc.csv"), "BTC", "1m")


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_an_export_that_fails_half_way_leaves_no_file(
    sessions: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    import_file(sessions, _file(tmp_path, CSV))
    target = tmp_path / name
    target.write_text("the previous export\n")

    def disk_full(self: pd.DataFrame, path: Path, *args: Any, **kwargs: Any) -> None:
        Path(path).write_text("ts,open,hi")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(
        pd.DataFrame, "to_csv" if name.endswith(".csv") else "to_parquet", disk_full
    )
    with pytest.raises(OSError, match="No space left"):
        export_file(sessions, target, "BTC", "1m")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert target.read_text() == "the previous export\n"


def test_gap_arithmetic() -> None:
    step = timeframe_step("5m")
    times = pd.DatetimeIndex(
        ["2024-01-01 00:00", "2024-01-01 00:05", "2024-01-01 00:30", "2024-01-01 00:47"], tz="UTC"
    )
    gaps = find_gaps(times, step)
    assert [(g.first.minute, g.last.minute, g.missing) for g in gaps] == [(10, 25, 4), (35, 42, 3)]
    assert find_gaps(times[:1], step) == []
    assert missing_bars(times[0], times[2], 3, step) == 4


def test_symbols_and_venue_names(tmp_path: Path) -> None:
    assert source_symbols(_file(tmp_path, CSV)) == ["BTC", "ETH"]
    markets = to_markets("binance", ["BTC", "BTC/USDT", "ETH/BTC", "XRP/KRW"], {"XRP": "XRP/KRW"})
    assert [(m.symbol, m.venue_symbol) for m in markets] == [
        ("BTC", "BTC/USDT"),
        ("BTC", "BTC/USDT"),
        ("ETH/BTC", "ETH/BTC"),
        ("XRP", "XRP/KRW"),
    ]
    with pytest.raises(DownloadError, match="unknown venue 'kraken'"):
        to_markets("kraken", ["BTC"])
    with pytest.raises(DownloadError, match="unknown venue 'kraken'"):
        open_exchange("kraken")


def test_when_reads_spans_and_iso() -> None:
    now = pd.Timestamp("2024-02-01T00:00Z")
    assert when("2d", now) == pd.Timestamp("2024-01-30T00:00Z")
    assert when("2024-01-05 10:00", now) == pd.Timestamp("2024-01-05T10:00Z")
    for text in ("yesterday-ish", "01/05/2024", "now"):
        with pytest.raises(Exception, match="neither ISO 8601 nor a span"):
            when(text, now)


# --- through the CLI -----------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SIGMA_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SIGMA_VAR_DIR", str(tmp_path / "var"))
    for var in ("SIGMA_CONFIG_FILE", "SIGMA_VENUE", "SIGMA_EXCHANGE_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_cli_import_list_gaps_export(cli_env: Path) -> None:
    source = _file(cli_env, CSV)
    empty = runner.invoke(app, ["data", "list"])
    assert empty.exit_code == 0 and "no bars stored" in empty.output
    done = runner.invoke(app, ["data", "import", source])
    assert done.exit_code == 0 and "BTC 1m: 3 bars stored" in done.output
    listed = runner.invoke(app, ["data", "list", "--symbol", "BTC"])
    assert listed.exit_code == 0 and "BTC" in listed.output and "ETH" not in listed.output
    gaps = runner.invoke(app, ["data", "gaps", "-t", "1m"])
    assert gaps.exit_code == 0 and "00:02:00" in gaps.output and "00:03:00" in gaps.output
    none = runner.invoke(app, ["data", "gaps", "--symbol", "ETH"])
    assert "no gaps" in none.output
    out = cli_env / "btc.csv"
    exported = runner.invoke(
        app, ["data", "export", str(out), "-s", "BTC", "--since", "2024-01-01T00:01Z"]
    )
    assert exported.exit_code == 0, exported.output
    assert out.read_text().splitlines()[0] == "ts,open,high,low,close,volume"
    # Values the command cannot use: one line on stderr, exit status 2.
    bad = runner.invoke(app, ["data", "import", _file(cli_env, "ts,open\n1,2\n", "bad.csv")])
    assert bad.exit_code == 2 and "missing columns: high, low, close" in bad.stderr
    assert len(bad.stderr.splitlines()) == 1 and "Traceback" not in bad.output
    no_venue = runner.invoke(app, ["data", "gaps", "--fill"])
    assert no_venue.exit_code == 2 and "pass --venue" in no_venue.output
    bad_config = runner.invoke(app, ["data", "download", "--venue", "upbit", "--config", "{"])
    assert bad_config.exit_code == 2 and "--config is not JSON" in bad_config.output
    since = runner.invoke(app, ["data", "export", str(out), "-s", "BTC", "--until", "whenever"])
    assert since.exit_code == 2
    assert since.stderr == ("error: --until: 'whenever' is neither ISO 8601 nor a span like 30d\n")
    helped = runner.invoke(app, ["data", "--help"])
    assert "ts,open,high,low,close,volume" in helped.output


def test_cli_import_respects_the_size_limit(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGMA_DATA_MAX_FILE_BYTES", "100")
    result = runner.invoke(app, ["data", "import", _file(cli_env, CSV)])
    assert result.exit_code == 2
    assert "over the limit of 100 bytes (SIGMA_DATA_MAX_FILE_BYTES)" in result.stderr


def test_cli_venue_failures_exit_1(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ccxt

    import sigma.cli.data as data_cli

    async def unreachable(*_args: Any, **_kwargs: Any) -> None:
        raise ccxt.NetworkError("upbit GET https://api.upbit.com/v1/market/all timed out")

    monkeypatch.setattr(data_cli, "check_markets", unreachable)
    result = runner.invoke(app, ["data", "download", "BTC", "--venue", "upbit"])
    assert result.exit_code == 1
    assert result.stderr == "error: upbit GET https://api.upbit.com/v1/market/all timed out\n"
