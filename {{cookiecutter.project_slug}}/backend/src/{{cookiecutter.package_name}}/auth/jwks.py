"""The identity provider's signing keys (its JWKS), fetched at startup and kept fresh.

Written over httpx rather than PyJWT's PyJWKClient: that client is synchronous
(urllib), so each fetch would block the worker's event loop, and it has no notion of
keeping the last good keys when the provider is down. Here a fetch never blocks
requests, keys survive a failed refresh (the metric and the log say they are stale),
and a token naming an unknown key triggers at most one fetch per interval, however
many such tokens arrive.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping

import httpx
import jwt
import structlog

from .. import metrics
from .errors import KeySetError

logger = structlog.get_logger("auth")
DISCOVERY_PATH = "/.well-known/openid-configuration"


def parse_key_set(document: bytes, algorithms: frozenset[str]) -> dict[str, jwt.PyJWK]:
    """kid → key for every signing key whose algorithm is allowed; others are skipped."""
    try:
        parsed = json.loads(document)
    except ValueError as error:
        raise KeySetError(f"the key set is not JSON: {error}") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("keys"), list):
        raise KeySetError("the key set has no 'keys' list")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in parsed["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        try:
            key = jwt.PyJWK(entry)
        # PyJWK raises more than PyJWTError on malformed entries (fuzzed with PyJWT
        # 2.15: TypeError for a list or object as alg or crv, KeyError for an oct key
        # without k); one bad entry must not cost the others, the startup or a 500.
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            continue  # a key type or curve this service does not verify with, or garbage
        if isinstance(kid, str) and key.algorithm_name in algorithms:
            keys[kid] = key
    return keys


class KeySet:
    """The keys by kid. `refresh` replaces them all on success and keeps them on failure."""

    def __init__(
        self,
        fetch_url: str | None,
        client: httpx.AsyncClient | None,
        algorithms: frozenset[str],
        *,
        max_bytes: int,
        unknown_key_refresh_seconds: float,
        keys: Mapping[str, jwt.PyJWK] | None = None,
    ) -> None:
        self._url = fetch_url
        self._client = client
        self._algorithms = algorithms
        self._max_bytes = max_bytes
        self._unknown_key_interval = unknown_key_refresh_seconds
        self._keys: dict[str, jwt.PyJWK] = dict(keys or {})
        # Counts the key sets held: what was derived from one (tokens.py's keys by
        # header) is stale once it changes.
        self.generation = 0
        self._last_unknown_key_fetch = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0

    @classmethod
    def static(cls, keys: Mapping[str, jwt.PyJWK]) -> KeySet:
        """Keys known in advance, never fetched (the development key)."""
        return cls(None, None, frozenset(), max_bytes=0, unknown_key_refresh_seconds=0, keys=keys)

    def get(self, kid: str) -> jwt.PyJWK | None:
        return self._keys.get(kid)

    async def get_unknown(self, kid: str) -> jwt.PyJWK | None:
        """A kid not in the set: the provider may have rotated its keys. Fetch again,
        unless a fetch started less than the interval ago (a flood of made-up kids)."""
        async with self._lock:
            if kid not in self._keys and self._may_fetch_again():
                await self.refresh()
        return self._keys.get(kid)

    def _may_fetch_again(self) -> bool:
        now = time.monotonic()
        if self._url is None or now - self._last_unknown_key_fetch < self._unknown_key_interval:
            return False
        self._last_unknown_key_fetch = now
        return True

    async def refresh_or_fail(self) -> None:
        """The first fetch, at startup: without keys no token could be verified."""
        self._replace(await self.fetch())
        metrics.AUTH_KEY_REFRESHES.labels(outcome="ok").inc()
        metrics.AUTH_KEYS_STALE.set(0)

    def _replace(self, keys: dict[str, jwt.PyJWK]) -> None:
        self._keys = keys
        self.generation += 1

    async def refresh(self) -> None:
        """Fetch the key set; on failure keep the current keys and say they are stale."""
        try:
            keys = await self.fetch()
        except KeySetError as error:
            metrics.AUTH_KEY_REFRESHES.labels(outcome="failed").inc()
            metrics.AUTH_KEYS_STALE.set(1)
            logger.warning("signing keys not refreshed; the cached keys stay", error=str(error))
            return
        self._replace(keys)
        metrics.AUTH_KEY_REFRESHES.labels(outcome="ok").inc()
        metrics.AUTH_KEYS_STALE.set(0)

    async def fetch(self) -> dict[str, jwt.PyJWK]:
        """The provider's current keys, or KeySetError (at startup: the service stops)."""
        if self._url is None or self._client is None:
            msg = "a static key set is never fetched"
            raise KeySetError(msg)
        self.fetches += 1
        document = await read_limited(self._client, self._url, self._max_bytes)
        keys = parse_key_set(document, self._algorithms)
        if not keys:
            raise KeySetError(f"{self._url} holds no signing key for the allowed algorithms")
        return keys

    async def refresh_periodically(self, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            await self.refresh()


async def read_limited(client: httpx.AsyncClient, url: str, max_bytes: int) -> bytes:
    """GET `url`; a failure, a non-200 answer or a body over max_bytes is KeySetError."""
    try:
        async with client.stream("GET", url) as response:
            if response.status_code != httpx.codes.OK:
                raise KeySetError(f"{url} answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise KeySetError(f"{url} sent more than {max_bytes} bytes")
            return bytes(body)
    except httpx.HTTPError as error:
        raise KeySetError(f"{url}: {error!r}") from None


async def discover_key_set_url(client: httpx.AsyncClient, issuer: str, max_bytes: int) -> str:
    """The jwks_uri of the issuer's OpenID Connect discovery document."""
    url = issuer.rstrip("/") + DISCOVERY_PATH
    try:
        document = json.loads(await read_limited(client, url, max_bytes))
    except ValueError:
        raise KeySetError(f"{url} is not JSON") from None
    jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
        raise KeySetError(f"{url} names no jwks_uri")
    return jwks_uri
