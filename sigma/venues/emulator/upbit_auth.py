"""Upbit's request authentication: a JWT in ``Authorization: Bearer``, signed with the secret.

The token's payload carries ``access_key``, a fresh ``nonce`` (UUID) and, when the request has
parameters, ``query_hash`` (hex SHA-512 of the unescaped query string, or of the JSON body's
fields written as one) with ``query_hash_alg`` ``SHA512``. HS256 (what ccxt signs with) and
HS512 (what Upbit's own examples use) are both accepted. Upbit's tokens hold no timestamp, so
the venue's clock (and a clock-skew fault) plays no part in authentication.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson

from sigma.venues.emulator.accounts import Account
from sigma.venues.emulator.upbit_wire import UpbitError
from sigma.venues.emulator.venue import Venue

__all__ = ["JwtVerifier"]

_ALGORITHMS: dict[str, Callable[[], Any]] = {
    "HS256": hashlib.sha256,
    "HS384": hashlib.sha384,
    "HS512": hashlib.sha512,
}


def _jwt_failed() -> UpbitError:
    return UpbitError(401, "jwt_verification", "Jwt 토큰 검증에 실패했습니다.")


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class JwtVerifier:
    """Checks Upbit JWTs against the venue's accounts; remembers nonces to refuse replays."""

    def __init__(self, venue: Venue, nonce_memory: int = 200_000) -> None:
        self.venue = venue
        self.nonce_memory = nonce_memory
        self._nonces: OrderedDict[tuple[str, str], None] = OrderedDict()

    def verify(self, authorization: str | None, query: str | None, *, replay: bool) -> Account:
        """The account whose key signed ``authorization``. ``query`` is the string the
        ``query_hash`` must match (None: the request has no parameters). ``replay`` refuses a
        nonce seen before (REST); streams reuse their handshake token when they reconnect."""
        if not authorization or not authorization.startswith("Bearer "):
            raise _jwt_failed()
        head_part, payload, signature, signed = self._split(authorization[7:].strip())
        digest = _ALGORITHMS.get(str(head_part.get("alg")))
        key = payload.get("access_key")
        if digest is None:
            raise _jwt_failed()
        account = self.venue.account(key) if isinstance(key, str) else None
        if account is None:
            raise UpbitError(401, "invalid_access_key", "잘못된 엑세스 키입니다.")
        expected = hmac.new(account.secret.encode(), signed, digest).digest()
        nonce = payload.get("nonce")
        if not hmac.compare_digest(expected, signature) or not isinstance(nonce, str) or not nonce:
            raise _jwt_failed()
        if query is not None:
            self._check_query(payload, query)
        if replay:
            self._remember(account.api_key, nonce)
        return account

    @staticmethod
    def _split(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
        try:
            head_b64, payload_b64, signature_b64 = token.split(".")
            head = orjson.loads(_b64(head_b64))
            payload = orjson.loads(_b64(payload_b64))
            signature = _b64(signature_b64)
        except (ValueError, binascii.Error) as exc:  # orjson.JSONDecodeError is a ValueError
            raise _jwt_failed() from exc
        if not isinstance(head, dict) or not isinstance(payload, dict):
            raise _jwt_failed()
        return head, payload, signature, f"{head_b64}.{payload_b64}".encode()

    @staticmethod
    def _check_query(payload: dict[str, Any], query: str) -> None:
        claimed = payload.get("query_hash")
        algorithm = str(payload.get("query_hash_alg", "SHA512")).upper()
        actual = hashlib.sha512(query.encode()).hexdigest()
        if algorithm != "SHA512" or not isinstance(claimed, str) or claimed.lower() != actual:
            raise UpbitError(
                401, "invalid_query_payload", "Jwt의 query를 검증하는데 실패하였습니다."
            )

    def _remember(self, api_key: str, nonce: str) -> None:
        seen = (api_key, nonce)
        if seen in self._nonces:
            raise UpbitError(401, "nonce_used", "이미 요청한 nonce값이 다시 사용되었습니다.")
        self._nonces[seen] = None
        if len(self._nonces) > self.nonce_memory:
            self._nonces.popitem(last=False)
