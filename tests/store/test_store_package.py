"""`sigma.store` loads its repositories on first use, not with the package."""

import subprocess
import sys
import textwrap

import pytest

import sigma.store

# A fresh interpreter: in this one, other tests have imported pandas and the engine already.
HANDLES_ONLY = textwrap.dedent(
    """
    import sys

    import sigma.store.handles

    assert "pandas" not in sys.modules, "sigma.store.handles pulled in pandas"
    assert "sigma.store.backtests" not in sys.modules
    from sigma.store import session_scope

    assert session_scope.__module__ == "sigma.store.db"
    """
)


def test_a_handle_is_named_without_loading_pandas_or_the_repositories() -> None:
    done = subprocess.run(
        [sys.executable, "-c", HANDLES_ONLY], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_the_package_still_offers_its_repositories_by_name() -> None:
    from sigma.store.backtests import save_backtest

    assert sigma.store.save_backtest is save_backtest
    assert set(sigma.store.__all__) == set(sigma.store._HOME)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = sigma.store.nothing_here
