"""AuthService pieces without a server: roles, password hashing, tokens, throttle."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import jwt
import pytest

from sigma.api.auth import (
    AuthError,
    LoginThrottle,
    TokenService,
    dummy_hash,
    hash_password,
    parse_role,
    role_allows,
    verify_password,
)
from sigma.api.serialize import dec, opt_dec


def test_role_order() -> None:
    assert role_allows("admin", "trader") and role_allows("trader", "trader")
    assert not role_allows("viewer", "trader")
    assert not role_allows("root", "viewer")
    assert parse_role("viewer") == "viewer"
    with pytest.raises(ValueError, match="expected one of viewer, trader, admin"):
        parse_role("root")


def test_password_hashing() -> None:
    hashed = hash_password("s3cret-pass", rounds=4)
    assert hashed.startswith("$2b$04$") and "s3cret" not in hashed
    assert verify_password("s3cret-pass", hashed)
    assert not verify_password("s3cret-pasS", hashed)
    assert not verify_password("x" * 100, hashed)  # bcrypt refuses > 72 bytes: a mismatch
    assert not verify_password("s3cret-pass", "not-a-hash")
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("short", rounds=4)


def test_tokens_round_trip_and_expire() -> None:
    tokens = TokenService("k" * 40, timedelta(minutes=5), timedelta(days=1))
    now = datetime.now(UTC)
    token, expires = tokens.issue("ann", "trader", version=3, family="fam", now=now)
    claims = tokens.verify(token)
    assert (claims.username, claims.role, claims.kind) == ("ann", "trader", "access")
    assert (claims.version, claims.family, len(claims.jti)) == (3, "fam", 32)
    assert claims.expires_at == expires.replace(microsecond=0)
    old, _ = tokens.issue("ann", "trader", version=3, family="fam", now=now - timedelta(minutes=6))
    with pytest.raises(AuthError, match="token expired"):
        tokens.verify(old)
    refresh, refresh_expires = tokens.issue(
        "ann", "trader", "refresh", version=3, family="fam", jti="j1", now=now
    )
    assert refresh_expires - now == timedelta(days=1) == tokens.expiry("refresh", now) - now
    assert tokens.verify(refresh, "refresh").jti == "j1"
    with pytest.raises(AuthError, match="expected access"):
        tokens.verify(refresh)
    other = TokenService("z" * 40, timedelta(minutes=5), timedelta(days=1))
    with pytest.raises(AuthError, match="invalid token"):
        other.verify(token)
    with pytest.raises(AuthError, match="invalid token"):
        tokens.verify("not.a.jwt")


def test_throttle_window() -> None:
    now = [0.0]
    throttle = LoginThrottle(max_failures=2, window=10.0, clock=lambda: now[0])
    assert throttle.retry_after("k") is None
    throttle.failed("k")
    now[0] = 4.0
    throttle.failed("k")
    assert throttle.retry_after("k") == pytest.approx(6.0)
    now[0] = 10.5  # the first failure left the window
    assert throttle.retry_after("k") is None
    now[0] = 30.0  # both gone: the key is forgotten
    assert throttle.retry_after("k") is None
    assert throttle._failures == {}


def test_throttle_forgive_takes_back_one_failure() -> None:
    throttle = LoginThrottle(max_failures=2, window=10.0, clock=lambda: 0.0)
    throttle.forgive("k")  # nothing counted: nothing to take back
    throttle.failed("k")
    throttle.failed("k")
    assert throttle.retry_after("k") is not None
    throttle.forgive("k")
    assert throttle.retry_after("k") is None
    throttle.forgive("k")
    assert throttle._failures == {}


def test_decimal_strings() -> None:
    assert dec(Decimal("1.5000000000")) == "1.5"
    assert dec(Decimal("100.0000000000")) == "100"
    assert dec(Decimal("0E-10")) == "0"
    assert dec(Decimal("-0.0000001000")) == "-0.0000001"
    assert opt_dec(None) is None and opt_dec(Decimal("2.50")) == "2.5"


def test_throttle_tracks_a_bounded_number_of_keys() -> None:
    now = [0.0]
    throttle = LoginThrottle(max_failures=1, window=10.0, clock=lambda: now[0], max_keys=3)
    for key in ("a", "b", "c"):
        throttle.failed(key)
    now[0] = 5.0
    throttle.failed("d")  # over the bound, nothing expired yet: the oldest key goes
    assert list(throttle._failures) == ["b", "c", "d"]
    assert throttle.retry_after("a") is None and throttle.retry_after("d") is not None
    now[0] = 12.0
    throttle.failed("e")  # over the bound again: b and c have expired and go, d stays
    throttle.failed("f")
    assert list(throttle._failures) == ["d", "e", "f"]


@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        ({}, 'missing the "ver" claim'),
        ({"ver": "1"}, "'ver' is not an integer"),
    ],
)
def test_tokens_without_a_whole_version_are_refused(
    claims: dict[str, object], problem: str
) -> None:
    # Tokens from before revocation existed carry no version: they must not pass as version 0.
    payload = {
        "sub": "ann",
        "typ": "access",
        "fam": "f",
        "jti": "j",
        "exp": datetime.now(UTC) + timedelta(minutes=1),
        **claims,
    }
    token = jwt.encode(payload, "k" * 40, algorithm="HS256")
    with pytest.raises(AuthError, match=problem):
        TokenService("k" * 40, timedelta(minutes=5), timedelta(days=1)).verify(token)


def test_backoff_doubles_per_failure_up_to_the_cap() -> None:
    now = [0.0]
    throttle = LoginThrottle(window=300.0, clock=lambda: now[0])
    waits = []
    for _ in range(12):
        throttle.failed("k")
        waits.append(throttle.backoff("k", free=3, base=1.0, cap=30.0))
    assert waits == [None, None, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0]
    now[0] = 29.5
    assert throttle.backoff("k", free=3, base=1.0, cap=30.0) == 0.5
    now[0] = 30.0
    assert throttle.backoff("k", free=3, base=1.0, cap=30.0) is None
    now[0] = 301.0  # the failures left the window
    assert throttle.backoff("k", free=3, base=1.0, cap=30.0) is None


def test_dummy_hash_costs_what_a_real_hash_costs() -> None:
    assert dummy_hash(6) is dummy_hash(6) and dummy_hash(6).startswith("$2b$06$")
    real = hash_password("s3cret-pass", rounds=8)

    def median_seconds(hashed: str) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            verify_password("wrong-password", hashed)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    # Work factor 8 is ~16x factor 4: a cheap dummy would be far below half the real cost.
    assert median_seconds(dummy_hash(8)) > 0.5 * median_seconds(real)
