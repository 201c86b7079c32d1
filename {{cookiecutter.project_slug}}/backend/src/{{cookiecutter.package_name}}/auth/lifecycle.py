"""A worker's token verifier, from startup (keys fetched, or the worker stops)
to shutdown (the refresh task and the HTTP client closed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import structlog

from ..configuration import AuthSettings
from .development import DEVELOPMENT_ALGORITHM, DEVELOPMENT_ISSUER, development_keys
from .jwks import KeySet, discover_key_set_url
from .token_cache import VerifiedTokens
from .tokens import TokenVerifier

logger = structlog.get_logger("auth")


@contextlib.asynccontextmanager
async def token_verifier(settings: AuthSettings) -> AsyncIterator[TokenVerifier]:
    """Raises KeySetError when the provider's keys cannot be read at startup."""
    cache = VerifiedTokens(settings.token_cache_size)
    if settings.development_key:
        keys = KeySet.static(development_keys())
        yield _verifier(keys, DEVELOPMENT_ISSUER, {DEVELOPMENT_ALGORITHM}, settings, cache)
        return
    assert settings.issuer is not None  # noqa: S101 - configuration.py requires one or the other
    timeout = httpx.Timeout(settings.jwks_timeout_seconds)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        url = settings.jwks_url or await discover_key_set_url(
            client, settings.issuer, settings.jwks_max_bytes
        )
        keys = KeySet(
            url,
            client,
            frozenset(settings.algorithms),
            max_bytes=settings.jwks_max_bytes,
            unknown_key_refresh_seconds=settings.unknown_key_refresh_seconds,
        )
        await keys.refresh_or_fail()
        logger.info("signing keys loaded", url=url)
        refresher = asyncio.create_task(keys.refresh_periodically(settings.jwks_refresh_seconds))
        try:
            yield _verifier(keys, settings.issuer, set(settings.algorithms), settings, cache)
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher


def _verifier(
    keys: KeySet,
    issuer: str,
    algorithms: set[str],
    settings: AuthSettings,
    cache: VerifiedTokens,
) -> TokenVerifier:
    return TokenVerifier(
        keys,
        issuer=issuer,
        audience=settings.audience,
        algorithms=algorithms,
        leeway_seconds=settings.leeway_seconds,
        scopes_claim=settings.scopes_claim,
        cache=cache,
    )
