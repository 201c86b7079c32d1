"""The asyncpg connection pool, with the two guarantees asyncpg does not give:
a maximum connection lifetime, and a bounded wait that turns into a 503."""

from __future__ import annotations

import asyncio
import random
import time
from types import TracebackType
from typing import TypeAlias

import asyncpg
import structlog

from .. import metrics
from ..configuration import DatabaseSettings
from .errors import DatabaseUnavailableError, ShedCause

logger = structlog.get_logger("db")
# Reopening the pool after a failed start: the first retry after this, then twice
# as long each time up to the maximum, less up to half at random so that workers
# and replicas do not all come back at once.
REOPEN_INTERVAL_SECONDS = 1.0
REOPEN_MAX_INTERVAL_SECONDS = 15.0
# A statement cancelled by statement_timeout: the database is busy; worth a retry soon.
BUSY_RETRY_AFTER_SECONDS = 1.0
# While every pooled connection is busy, readiness asks the server on a connection of
# its own: one at a time per worker, and a success stands for this long, so that a
# flood of probes (several load balancers, a benchmark) does not open one each.
OUTSIDE_PING_FRESH_SECONDS = 1.0

# Errors meaning "the server cannot be reached or dropped us", as opposed to a
# bad query: these become 503 + Retry-After instead of a 500.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    # SQLSTATE class 53: too many connections, out of memory, disk full.
    asyncpg.InsufficientResourcesError,
)
# Errors opening a connection: any refusal from the server (a bad password, a
# missing database) as well. The database may be fixed while the service runs.
OPEN_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)


class AgedConnection(asyncpg.Connection):
    """A connection that knows when it must be retired (asyncpg has no max lifetime)."""

    __slots__ = ("retire_at",)

    retire_at: float

    def get_reset_query(self) -> str:
        """No reset query on release: it would cost a round trip per request.

        asyncpg's default (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`)
        undoes session state, and this service keeps none: advisory locks are
        transaction-scoped, cursors live in transactions, nothing LISTENs or SETs.
        asyncpg still rolls back a transaction left open, whatever this returns.
        """
        return ""


PooledConnection: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"


class Database:
    """Owns the pool: opened in the app's lifespan, closed on shutdown."""

    def __init__(self, settings: DatabaseSettings, application_name: str) -> None:
        self._settings = settings
        self._application_name = application_name
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._reopening: asyncio.Task[None] | None = None
        self._waiting = 0  # requests waiting for a connection (asyncpg does not count them)
        self._outside_ping: asyncio.Task[None] | None = None
        self._outside_ping_answered_at = float("-inf")

    @classmethod
    async def open(cls, settings: DatabaseSettings, application_name: str) -> Database:
        """Open the pool with min_size connections. If the database is down, start
        anyway with an empty pool that connects on demand (so /health/live answers
        and requests get 503), and reopen a full pool once the database is back."""
        database = cls(settings, application_name)
        try:
            database._pool = await database._create_pool(settings.pool.min_size)
        except OPEN_ERRORS as error:
            logger.warning("database unreachable at startup; serving without it", error=repr(error))
            metrics.POOL_OPEN_FAILURES.labels(reason=type(error).__name__).inc()
            database._pool = await database._create_pool(0)
            if settings.pool.min_size > 0:
                database._reopening = asyncio.create_task(database._reopen_when_reachable())
        return database

    async def _create_pool(self, min_size: int) -> asyncpg.Pool[asyncpg.Record]:
        pool_settings = self._settings.pool
        lifetime = pool_settings.max_lifetime_seconds

        async def stamp_lifetime(connection: asyncpg.Connection) -> None:
            # Up to 10% jitter, so connections opened together are not all retired together.
            if isinstance(connection, AgedConnection):
                connection.retire_at = time.monotonic() + lifetime * random.uniform(0.9, 1.0)  # noqa: S311

        # The pool that serves while the full one cannot open (min_size 0) closes its
        # idle connections within a second: kept for minutes, they would hold the very
        # slots (a role's or the server's last ones) that the full pool needs to reopen.
        idle_lifetime = min(lifetime, 300.0) if min_size > 0 else REOPEN_INTERVAL_SECONDS
        return await asyncpg.create_pool(
            self._settings.url.get_secret_value(),
            min_size=min_size,
            max_size=pool_settings.max_size,
            max_inactive_connection_lifetime=idle_lifetime,
            init=stamp_lifetime,
            connection_class=AgedConnection,
            command_timeout=pool_settings.command_timeout_seconds,
            statement_cache_size=pool_settings.statement_cache_size,
            timeout=pool_settings.acquire_timeout_seconds,
            # application_name only: PgBouncer passes it on, and refuses any other
            # startup parameter (the timeouts are the database's: session_settings.py).
            server_settings={"application_name": self._application_name},
        )

    async def _reopen_when_reachable(self) -> None:
        """Retry until the pool opens with its minimum size, whatever the error: the
        task must outlive a full server, a wrong password or a missing database."""
        interval = REOPEN_INTERVAL_SECONDS
        while True:
            await asyncio.sleep(interval * random.uniform(0.5, 1.0))  # noqa: S311
            try:
                pool = await self._create_pool(self._settings.pool.min_size)
            except Exception as error:  # any: logged, counted, then retried
                interval = min(interval * 2, REOPEN_MAX_INTERVAL_SECONDS)
                logger.warning(
                    "database still unreachable; retrying",
                    error=repr(error),
                    retry_in_seconds=interval,
                )
                metrics.POOL_OPEN_FAILURES.labels(reason=type(error).__name__).inc()
                continue
            stale, self._pool = self._pool, pool
            logger.info("database reachable; pool reopened with its minimum size")
            if stale is not None:
                await stale.close()  # waits for connections still checked out
            return

    async def close(self) -> None:
        for task in (self._reopening, self._outside_ping):
            if task is not None:
                task.cancel()
        if self._pool is not None:
            await self._pool.close()

    @property
    def pool(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            msg = "the database is not open"
            raise RuntimeError(msg)
        return self._pool

    def connection(self, wait_seconds: float | None = None) -> Checkout:
        """A pooled connection within `wait_seconds` (default: the acquire timeout), or
        DatabaseUnavailableError. Connections past their lifetime are retired on release."""
        return Checkout(self, wait_seconds or self._settings.pool.acquire_timeout_seconds)

    async def _release(
        self, pool: asyncpg.Pool[asyncpg.Record], connection: PooledConnection
    ) -> None:
        """Give the connection back, or retire it past its lifetime. If the server goes
        away meanwhile (the proxy already detached, or the reset on release fails),
        asyncpg has terminated the connection and freed its slot: the request's own
        outcome stands. (Both seen with the database restarted under load.)

        Always with the timeout: asyncpg may close the connection on release (its
        query limit, an expired generation), and a close without one waits forever on
        a server that went silent, holding the pool's slot."""
        timeout = self._settings.pool.acquire_timeout_seconds
        try:
            if connection.is_closed():
                await pool.release(connection)
            elif time.monotonic() >= _retire_at(connection):
                logger.debug("retiring connection past its lifetime")
                # Closing a pooled connection hands its slot back to the pool, which
                # opens a fresh one on demand (or in the background, for min_size).
                await connection.close(timeout=timeout)
            else:
                await pool.release(connection, timeout=timeout)
        except CONNECTION_ERRORS as error:
            logger.info("connection lost while released", error=repr(error))

    async def ping(self) -> None:
        """SELECT 1 within the ready timeout, or DatabaseUnavailableError. A pool with
        every connection in use is busy, not down: it is not queued behind, the
        server is asked on a connection of the probe's own instead (the pool's
        connections may all be stuck on a network gone silent, until their
        requests time out)."""
        pool = self.pool
        timeout = self._settings.ready_timeout_seconds
        if pool.get_idle_size() == 0 and pool.get_size() >= pool.get_max_size():
            await self._shared_ping_outside_pool(seconds=timeout)
            return
        async with self.connection(wait_seconds=timeout) as connection:
            try:
                await connection.fetchval("SELECT 1", timeout=timeout)
            except TimeoutError as error:
                raise DatabaseUnavailableError(
                    "SELECT 1 timed out", retry_after_seconds=timeout
                ) from error

    async def _shared_ping_outside_pool(self, seconds: float) -> None:
        """The probes of one moment share one connection's answer (see
        OUTSIDE_PING_FRESH_SECONDS); a failure is not remembered."""
        if time.monotonic() - self._outside_ping_answered_at < OUTSIDE_PING_FRESH_SECONDS:
            return
        if self._outside_ping is None:
            self._outside_ping = asyncio.create_task(self._ping_outside_pool(seconds))
            self._outside_ping.add_done_callback(self._outside_ping_done)
        # Shielded: a probe that gives up (its own timeout) leaves the answer to the others.
        await asyncio.shield(self._outside_ping)

    def _outside_ping_done(self, ping: asyncio.Task[None]) -> None:
        self._outside_ping = None
        if not ping.cancelled() and ping.exception() is None:
            self._outside_ping_answered_at = time.monotonic()

    async def _ping_outside_pool(self, seconds: float) -> None:
        url = self._settings.url.get_secret_value()
        try:
            connection = await asyncpg.connect(
                url, timeout=seconds, server_settings={"application_name": self._application_name}
            )
        except asyncpg.TooManyConnectionsError:
            return  # the server answers, and the pool holds its share: busy, reachable
        except OPEN_ERRORS as error:
            raise DatabaseUnavailableError(
                f"no connection within {seconds}s: {error!r}",
                retry_after_seconds=seconds,
                cause=_cause(error),
            ) from error
        try:
            await connection.fetchval("SELECT 1", timeout=seconds)
        except CONNECTION_ERRORS as error:
            raise DatabaseUnavailableError(
                f"SELECT 1 failed: {error!r}", retry_after_seconds=seconds, cause=_cause(error)
            ) from error
        finally:
            connection.terminate()  # no goodbye round trip to wait for

    def stats(self) -> dict[str, int]:
        """The pool's connections (size = in_use + idle), its bounds, and the waiters."""
        pool = self.pool
        size, idle = pool.get_size(), pool.get_idle_size()
        return {
            "size": size,
            "in_use": size - idle,
            "idle": idle,
            "waiting": self._waiting,
            "min_size": pool.get_min_size(),
            "max_size": pool.get_max_size(),
        }


class Checkout:
    """Database.connection's context. A class, not an @asynccontextmanager (whose
    generator and wrapper run on every checkout), with its own timeout on the wait."""

    __slots__ = ("_connection", "_database", "_pool", "_wait")

    # Set by __aenter__, before __aexit__ can run.
    _pool: asyncpg.Pool[asyncpg.Record]
    _connection: PooledConnection

    def __init__(self, database: Database, wait_seconds: float) -> None:
        self._database = database
        self._wait = wait_seconds

    async def __aenter__(self) -> PooledConnection:
        database = self._database
        # Released to the pool it came from, even if the pool is reopened meanwhile.
        self._pool = pool = database.pool
        database._waiting += 1
        try:
            # Our own timeout, not acquire(timeout=): asyncpg would wrap the wait in a
            # coroutine of its own and also apply the timeout to every release.
            async with asyncio.timeout(self._wait):
                self._connection = connection = await pool.acquire()
        except OPEN_ERRORS as error:
            raise DatabaseUnavailableError(
                f"no connection within {self._wait}s: {error!r}",
                retry_after_seconds=database._settings.pool.acquire_timeout_seconds,
                cause="pool_exhausted" if isinstance(error, TimeoutError) else _cause(error),
            ) from error
        finally:
            database._waiting -= 1
        return connection

    async def __aexit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        database, connection = self._database, self._connection
        retry_after = database._settings.pool.acquire_timeout_seconds
        try:
            if isinstance(error, CONNECTION_ERRORS):
                raise DatabaseUnavailableError(
                    f"connection failed: {error!r}",
                    retry_after_seconds=retry_after,
                    cause=_cause(error),
                ) from error
            if isinstance(error, asyncpg.QueryCanceledError):
                # statement_timeout (or a cancel from the server): busy, not a bug.
                raise DatabaseUnavailableError(
                    f"query cancelled: {error!r}",
                    retry_after_seconds=BUSY_RETRY_AFTER_SECONDS,
                    cause="statement_timeout",
                ) from error
        finally:
            await database._release(self._pool, connection)


def _cause(error: BaseException) -> ShedCause:
    if isinstance(error, asyncpg.InsufficientResourcesError):
        return "insufficient_resources"
    return "unreachable"


def _retire_at(connection: PooledConnection) -> float:
    # The proxy forwards attribute access to the AgedConnection it wraps.
    return float(getattr(connection, "retire_at", 0.0))
