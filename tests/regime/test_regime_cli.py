from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sigma.cli.regime import app
from sigma.feeds.synthetic import generate_bars, write_csv
from tests.regime.test_regime_news import RSS

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_detect_on_the_synthetic_market_prints_the_confusion_matrix() -> None:
    out = invoke("detect", "--bars", "1500", "--seed", "3")
    assert "confusion matrix after 200 warm-up bars" in out
    assert "balanced accuracy:" in out and "SYN " in out


def test_detect_and_scan_files(tmp_path: Path) -> None:
    paths = []
    for i, name in enumerate(("btc.csv", "eth.csv")):
        frame, _ = generate_bars(400, seed=i)
        path = tmp_path / name
        write_csv(frame, path)
        paths.append(str(path))
    out = invoke("detect", "--data", paths[0], "--symbol", "BTC")
    assert "confusion" not in out and "BTC " in out
    out = invoke("scan", "--data", paths[0], "--data", paths[1])
    assert "BTC" in out and "ETH" in out
    bad = runner.invoke(app, ["detect", "--data", str(tmp_path / "missing.csv")])
    assert bad.exit_code != 0


def test_scan_synthetic_and_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGMA_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SIGMA_VAR_DIR", str(tmp_path))
    out = invoke("scan", "--symbols", "2", "--bars", "300", "--store")
    assert "SYN0" in out and "SYN1" in out and "stored 2 readings in trend_data" in out


def test_compare_prints_off_and_on_and_writes_the_report(tmp_path: Path) -> None:
    report = tmp_path / "reports" / "cmp.html"
    out = invoke(
        "compare", "--strategy", "rsi_reversion", "--bars", "1500", "--report", str(report)
    )
    assert "adaptive off" in out and "parameter changes" in out and "adaptive on vs off" in out
    html = report.read_text()
    assert "rsi_reversion adaptive off" in html and "rsi_reversion adaptive on" in html
    assert "parameter changes" in html
    bad = runner.invoke(app, ["compare", "--strategy", "nope"])
    assert bad.exit_code != 0 and "unknown strategy" in bad.output


def test_news_scores_json_and_rss(tmp_path: Path) -> None:
    items = tmp_path / "news.json"
    items.write_text(json.dumps([{"ts": "2024-01-01T00:00:00Z", "headline": "Bitcoin hacked"}]))
    out = invoke("news", str(items), "--keyword", "BTC=bitcoin,btc")
    assert "BTC" in out and "-0.76" in out
    feed = tmp_path / "wire.xml"
    feed.write_text(RSS)
    assert "halt" in invoke("news", str(feed))
    bad = runner.invoke(app, ["news", str(items), "--keyword", "nokey"])
    assert bad.exit_code != 0 and "SYMBOL=word" in bad.output
    broken = tmp_path / "broken.xml"
    broken.write_text("<rss><item>")
    assert runner.invoke(app, ["news", str(broken)]).exit_code != 0


def test_scan_writes_each_note_with_its_news(tmp_path: Path) -> None:
    frame, _ = generate_bars(400, seed=0)
    path = tmp_path / "btc.csv"
    write_csv(frame, path)
    items = tmp_path / "news.json"
    stamp = frame.index[-1].isoformat()
    items.write_text(json.dumps([{"ts": stamp, "headline": "Bitcoin exchange hacked"}]))
    out = invoke("scan", "--data", str(path), "--news", str(items), "--keyword", "BTC=bitcoin")
    assert "News (negative" in out and "Bitcoin exchange hacked" in out
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    failed = runner.invoke(app, ["scan", "--data", str(path), "--news", str(bad)])
    assert failed.exit_code != 0 and "expected a list of news objects" in failed.output


def test_missing_figures_print_as_a_dash() -> None:
    from sigma.cli.regime import _fmt

    assert (_fmt(None), _fmt(1.234), _fmt(3)) == ("-", "1.23", "3")


def test_the_sigma_command_carries_the_regime_commands() -> None:
    from sigma.cli.main import app as sigma

    result = runner.invoke(sigma, ["regime", "detect", "--bars", "600", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "balanced accuracy:" in result.output


def test_enable_asks_the_running_bot_to_lift_a_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sigma.regime.state import AdaptiveStateStore
    from sigma.store.db import init_db, session_factory
    from tests.regime.conftest import T0

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SIGMA_DATABASE_URL", url)
    monkeypatch.setenv("SIGMA_VAR_DIR", str(tmp_path))
    monkeypatch.setattr("getpass.getuser", lambda: "alice")
    args = ["enable", "--strategy", "sma_cross", "--symbol", "BTC", "--reason", "feed fixed"]
    nothing = runner.invoke(app, args)
    assert nothing.exit_code == 1 and "neither throttled nor disabled" in nothing.output
    engine = init_db(url)
    try:
        store = AdaptiveStateStore(session_factory(engine))
        store.save_strategy(
            "sma_cross",
            "BTC",
            status="disable",
            score=-0.01,
            reason="losing streak",
            blocked=frozenset(),
            baseline={},
            current={},
            ts=T0,
        )
        out = invoke(*args)
        assert "(disable: losing streak) will be enabled on its next bar" in out
        (request,) = store.enable_requests("BTC")
        assert (request.strategy, request.by, request.reason) == (
            "sma_cross",
            "cli:alice",
            "feed fixed",
        )
    finally:
        engine.dispose()
