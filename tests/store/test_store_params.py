"""Versioned strategy parameters with history."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.store import deactivate_params, get_active_params, param_history, set_params
from sigma.store.models import StrategyParam
from sigma.store.params import active_version


def test_no_params_before_the_first_set(session: Session) -> None:
    assert get_active_params(session, "sma_cross", "BTC") is None
    assert param_history(session, "sma_cross", "BTC") == []
    assert deactivate_params(session, "sma_cross", "BTC") is False


def test_changes_bump_the_version_and_record_old_and_new(session: Session) -> None:
    v1 = set_params(session, "sma_cross", "BTC", {"fast": 10, "slow": 20}, "initial", "cli")
    session.commit()
    v2 = set_params(session, "sma_cross", "BTC", {"fast": 8, "slow": 20}, "regime: trend", "adj")
    session.commit()
    assert (v1, v2) == (1, 2)
    assert get_active_params(session, "sma_cross", "BTC") == {"fast": 8, "slow": 20}

    history = param_history(session, "sma_cross", "BTC")
    assert [(h.version, h.old, h.new) for h in history] == [
        (1, None, {"fast": 10, "slow": 20}),
        (2, {"fast": 10, "slow": 20}, {"fast": 8, "slow": 20}),
    ]
    assert [(h.reason, h.changed_by) for h in history] == [
        ("initial", "cli"),
        ("regime: trend", "adj"),
    ]
    assert all(h.ts.tzinfo is UTC for h in history)
    row = session.scalars(select(StrategyParam)).one()
    assert row.version == 2 and row.active and row.updated_at.tzinfo is UTC


def test_setting_the_same_values_is_a_noop(session: Session) -> None:
    set_params(session, "rsi", "ETH", {"period": 14}, "initial", "cli")
    assert set_params(session, "rsi", "ETH", {"period": 14}, "again", "adj") == 1
    session.commit()
    assert len(param_history(session, "rsi", "ETH")) == 1


def test_sets_are_per_strategy_and_symbol(session: Session) -> None:
    set_params(session, "rsi", "ETH", {"period": 14}, "r", "u")
    set_params(session, "rsi", "BTC", {"period": 7}, "r", "u")
    set_params(session, "sma", "ETH", {"fast": 3}, "r", "u")
    session.commit()
    assert get_active_params(session, "rsi", "ETH") == {"period": 14}
    assert get_active_params(session, "rsi", "BTC") == {"period": 7}
    assert [h.new for h in param_history(session, "sma", "ETH")] == [{"fast": 3}]


def test_deactivate_then_set_again(session: Session) -> None:
    set_params(session, "bb", "SOL", {"k": 2.0}, "initial", "cli")
    assert deactivate_params(session, "bb", "SOL") is True
    session.commit()
    assert get_active_params(session, "bb", "SOL") is None
    assert deactivate_params(session, "bb", "SOL") is False
    assert set_params(session, "bb", "SOL", {"k": 2.0}, "re-enabled", "ops") == 2
    session.commit()
    assert get_active_params(session, "bb", "SOL") == {"k": 2.0}
    assert param_history(session, "bb", "SOL")[-1].old == {"k": 2.0}


def test_decimal_params_are_stored_as_exact_strings(session: Session) -> None:
    set_params(session, "grid", "BTC", {"step": Decimal("0.0125")}, "initial", "cli")
    session.commit()
    assert get_active_params(session, "grid", "BTC") == {"step": "0.0125"}


def test_active_version_is_the_set_in_force_with_its_version(session: Session) -> None:
    assert active_version(session, "bb", "SOL") is None
    set_params(session, "bb", "SOL", {"k": 2.0}, "initial", "cli")
    set_params(session, "bb", "SOL", {"k": 2.5}, "wider", "cli")
    session.commit()
    assert active_version(session, "bb", "SOL") == ({"k": 2.5}, 2)
    deactivate_params(session, "bb", "SOL")
    session.commit()
    assert active_version(session, "bb", "SOL") is None
