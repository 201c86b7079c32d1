"""Plugs the ledger example into the app: its routes, and the periodic deletion of
expired idempotency keys while the app runs (its routes read the settings through
dependencies.SettingsDep)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import structlog
from starlette.routing import BaseRoute

from ..configuration import IdempotencySettings
from ..db import idempotency
from ..db.pool import Database
from . import accounts, transfers

logger = structlog.get_logger("ledger")

# The routes themselves, for the app's own route list, not routers included: FastAPI
# matches an included router's routes twice per request, and each level again.
ROUTES: list[BaseRoute] = [*accounts.router.routes, *transfers.router.routes]


@contextlib.asynccontextmanager
async def expired_keys_deleted(
    database: Database, settings: IdempotencySettings
) -> AsyncIterator[None]:
    """Deletes expired idempotency keys in the background while the app runs."""
    cleanup = asyncio.create_task(delete_expired_keys_periodically(database, settings))
    try:
        yield
    finally:
        cleanup.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cleanup


async def delete_expired_keys_periodically(
    database: Database, settings: IdempotencySettings
) -> None:
    """Every interval (±10%, so workers drift apart), delete expired keys in small
    batches; a failed round is logged and the next one tries again."""
    while True:
        interval = settings.cleanup_interval_seconds * random.uniform(0.9, 1.1)  # noqa: S311
        await asyncio.sleep(interval)
        try:
            deleted = await idempotency.delete_expired(database, settings.cleanup_batch_size)
        except Exception as error:  # the loop must outlive any one failure
            logger.warning("deleting expired idempotency keys failed", error=repr(error))
            continue
        if deleted:
            logger.info("expired idempotency keys deleted", count=deleted)
