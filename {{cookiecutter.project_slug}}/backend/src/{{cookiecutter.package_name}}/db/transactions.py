"""One transaction, retried when PostgreSQL aborts it for a conflict that trying
again resolves (serialization failure, deadlock), so none reaches a client."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import asyncpg
import structlog

from .errors import DatabaseUnavailableError
from .pool import Database, PooledConnection

logger = structlog.get_logger("db")

Result = TypeVar("Result")
Isolation = Literal["read_committed", "repeatable_read", "serializable"]

RETRYABLE: tuple[type[Exception], ...] = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)
# Waited too long for a lock (lock_timeout, NOWAIT): retrying would only wait again.
# A statement cancelled by statement_timeout is already a 503 in Database.connection.
GIVE_UP: tuple[type[Exception], ...] = (asyncpg.LockNotAvailableError,)
BACKOFF_SECONDS = 0.01
RETRY_AFTER_SECONDS = 1.0


async def run_in_transaction(
    database: Database,
    work: Callable[[PooledConnection], Awaitable[Result]],
    *,
    attempts: int,
    isolation: Isolation = "read_committed",
) -> Result:
    """Run `work` in a transaction, up to `attempts` times on a retryable conflict;
    then, or on a lock or statement timeout, DatabaseUnavailableError (503)."""
    for attempt in range(1, attempts + 1):
        try:
            async with (
                database.connection() as connection,
                connection.transaction(isolation=isolation),
            ):
                return await work(connection)
        except RETRYABLE as error:
            if attempt == attempts:
                raise DatabaseUnavailableError(
                    f"transaction conflicted {attempts} times: {error!r}",
                    retry_after_seconds=RETRY_AFTER_SECONDS,
                ) from error
            logger.info("transaction conflict; retrying", attempt=attempt, error=repr(error))
            # Jittered exponential backoff, so the transactions that collided spread out.
            await asyncio.sleep(random.uniform(0, BACKOFF_SECONDS * 2**attempt))  # noqa: S311
        except GIVE_UP as error:
            raise DatabaseUnavailableError(
                f"timed out waiting in the database: {error!r}",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            ) from error
    message = "attempts must be at least 1"
    raise ValueError(message)
