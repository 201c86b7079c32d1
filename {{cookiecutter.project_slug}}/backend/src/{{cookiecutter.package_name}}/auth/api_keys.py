"""API keys for service-to-service callers: `lk_live_<id>_<secret>`, the id public
(it finds the row), the secret 256 random bits stored only as a keyed hash.

HMAC-SHA256 with a pepper, not bcrypt or argon2: those slow down guessing low-entropy
passwords, while a 256-bit secret cannot be guessed at any speed, so a slow hash
would only cost every cache miss milliseconds of CPU. The pepper (a setting, kept
out of the database) means a leaked api_keys table alone cannot test a guess."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from ..principal import Principal
from .errors import InvalidTokenError

PREFIX = "lk_live_"
_ID_BYTES = 8
_SECRET_BYTES = 32
# The whole key: prefix, 16 hex digits, "_", 43 URL-safe base64 characters.
_KEY = re.compile(r"lk_live_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")

# The row of an active key: its secret's hash and the principal it stands for.
StoredKey = tuple[bytes, Principal]
Lookup = Callable[[str], Awaitable[StoredKey | None]]


def new_key() -> tuple[str, str, str]:
    """(key id, secret, the full key to hand out once)."""
    key_id = secrets.token_hex(_ID_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    return key_id, secret, f"{PREFIX}{key_id}_{secret}"


def secret_hash(pepper: bytes, key_id: str, secret: str) -> bytes:
    # The id is in the message, so a row's hash only verifies the key it was made for.
    return hmac.digest(pepper, f"{key_id}:{secret}".encode(), hashlib.sha256)


def is_api_key(credential: str) -> bool:
    return credential.startswith(PREFIX)


class ApiKeyVerifier:
    """Looks a key's row up at most once per `ttl_seconds` per worker: a revoked key
    is refused at the latest `ttl_seconds` after its revocation. Unknown ids are
    remembered too, so a flood of made-up keys does not reach the database each time;
    at most `capacity` ids are kept (oldest out first)."""

    def __init__(self, lookup: Lookup, pepper: bytes, *, ttl_seconds: float, capacity: int) -> None:
        self._lookup = lookup
        self._pepper = pepper
        self._ttl = ttl_seconds
        self._capacity = capacity
        self._rows: dict[str, tuple[StoredKey | None, float]] = {}

    async def verify(self, key: str) -> Principal:
        """The key's principal, or InvalidTokenError."""
        match = _KEY.fullmatch(key)
        if match is None:
            raise InvalidTokenError("malformed api key")
        key_id, secret = match.groups()
        stored = await self._row(key_id)
        if stored is None:
            raise InvalidTokenError("unknown or revoked api key")
        expected, principal = stored
        if not hmac.compare_digest(expected, secret_hash(self._pepper, key_id, secret)):
            raise InvalidTokenError("wrong api key secret")
        return principal

    async def _row(self, key_id: str) -> StoredKey | None:
        entry = self._rows.get(key_id)
        now = time.monotonic()
        if entry is not None and now < entry[1]:
            return entry[0]
        stored = await self._lookup(key_id)
        self._rows.pop(key_id, None)
        if len(self._rows) >= self._capacity:
            del self._rows[next(iter(self._rows))]
        self._rows[key_id] = (stored, now + self._ttl)
        return stored
