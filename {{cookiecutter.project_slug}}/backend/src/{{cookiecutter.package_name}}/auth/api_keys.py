"""API keys for service-to-service callers: `lk_live_<id>_<secret>`, the id public
(it finds the row), the secret 256 random bits stored only as a keyed hash.

HMAC-SHA256 with a pepper, not bcrypt or argon2: those slow down guessing low-entropy
passwords, while a 256-bit secret cannot be guessed at any speed, so a slow hash
would only cost every cache miss milliseconds of CPU. The pepper (a setting, kept
out of the database) means a leaked api_keys table alone cannot test a guess."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from ..principal import API_KEY_SUBJECT_PREFIX, SUBJECT_MAX_LENGTH, Principal
from .errors import InvalidTokenError

PREFIX = "lk_live_"
_ID_BYTES = 8
_SECRET_BYTES = 32
# The whole key: prefix, 16 hex digits, "_", 43 URL-safe base64 characters.
_KEY = re.compile(r"lk_live_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")

# The row of an active key: its secret's hash and the principal it stands for.
StoredKey = tuple[bytes, Principal]
Lookup = Callable[[str], Awaitable[StoredKey | None]]
# The ids of the active keys, at most `limit` of them (a list longer than that says
# there are more).
ListIds = Callable[[int], Awaitable[list[str]]]


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
    is refused at the latest `ttl_seconds` after its revocation. At most `capacity`
    rows are kept (oldest out first).

    An id that is not in the set of active ids (read again at most once per
    `unknown_refresh_seconds`, when an id outside it arrives) is refused without a
    lookup: a flood of made-up keys, each with a new id, costs at most one query per
    `unknown_refresh_seconds`, and a key created since the last read works within
    `unknown_refresh_seconds`. With more than `capacity` active keys the set is not
    kept, and each unknown id is looked up (and remembered as unknown for
    `ttl_seconds`)."""

    def __init__(
        self,
        lookup: Lookup,
        list_ids: ListIds,
        pepper: bytes,
        *,
        ttl_seconds: float,
        unknown_refresh_seconds: float,
        capacity: int,
    ) -> None:
        self._lookup = lookup
        self._list_ids = list_ids
        self._pepper = pepper
        self._ttl = ttl_seconds
        self._unknown_refresh = unknown_refresh_seconds
        self._capacity = capacity
        self._rows: dict[str, tuple[StoredKey | None, float]] = {}
        self._active_ids: frozenset[str] | None = None
        self._ids_read_at = float("-inf")
        self._ids_lock = asyncio.Lock()

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
        if not await self._may_be_active(key_id):
            return None
        found = await self._lookup(key_id)
        stored = None if found is None else _namespaced(found)
        # The table takes a 255-character subject, which the prefix makes too long
        # for an account's holder: refused here, not as a failed insert (a 500) later.
        if stored is not None and len(stored[1].subject) > SUBJECT_MAX_LENGTH:
            stored = None
        self._rows.pop(key_id, None)
        if len(self._rows) >= self._capacity:
            del self._rows[next(iter(self._rows))]
        self._rows[key_id] = (stored, now + self._ttl)
        return stored

    async def _may_be_active(self, key_id: str) -> bool:
        if self._active_ids is not None and key_id in self._active_ids:
            return True
        async with self._ids_lock:  # one read at a time, however many ids arrive at once
            if time.monotonic() - self._ids_read_at >= self._unknown_refresh:
                ids = await self._list_ids(self._capacity + 1)
                self._active_ids = frozenset(ids) if len(ids) <= self._capacity else None
                self._ids_read_at = time.monotonic()
        return self._active_ids is None or key_id in self._active_ids


def _namespaced(stored: StoredKey) -> StoredKey:
    secret, principal = stored
    return secret, Principal(API_KEY_SUBJECT_PREFIX + principal.subject, principal.scopes)
