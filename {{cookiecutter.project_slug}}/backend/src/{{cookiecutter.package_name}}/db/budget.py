"""The live connection budget: what the database allows now, against what the fleet's
pools may open (replicas at the autoscaling maximum x workers x pool max_size).

The render-time check cannot see replicas, autoscaling maximums and workers drift in
production, or another application taking connections: each worker reads the server's
numbers at startup and every interval. A shortfall is logged once per worker and
exported (db_connection_budget_* gauges) for the alert rule; readiness never depends on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import asyncpg
import structlog

from .errors import DatabaseUnavailableError
from .pool import Database, PooledConnection

logger = structlog.get_logger("db")

# Client backends only: PostgreSQL's own processes hold no max_connections slot. This
# application: its application_name on its own database (a copy of it serving another
# database on the server is another application). Another role's application_name
# reads as NULL without pg_read_all_stats: counted as another application's, as it is.
READING = """
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int
           + coalesce(current_setting('reserved_connections', true), '0')::int AS reserved,
       count(*) FILTER (WHERE mine) AS observed,
       count(*) FILTER (WHERE NOT mine) AS others
FROM (
    SELECT coalesce(application_name = $1 AND datname = current_database(), false) AS mine
    FROM pg_stat_activity
    WHERE backend_type = 'client backend'
) AS connections
"""


@dataclass(frozen=True)
class BudgetReading:
    max_connections: int
    reserved: int  # superuser_reserved_connections (+ reserved_connections)
    observed: int  # open connections of this application, every replica's
    others: int  # open connections of every other application
    configured: int  # replicas x workers x pool max_size

    @property
    def allowed(self) -> int:
        """What this application may open: the slots no one else holds."""
        return self.max_connections - self.reserved - self.others

    @property
    def headroom(self) -> int:
        return self.allowed - self.configured

    def figures(self) -> dict[str, int]:
        """What the db_connection_budget_* gauges show."""
        return {
            "configured": self.configured,
            "allowed": self.allowed,
            "observed": self.observed,
            "headroom": self.headroom,
        }


async def read_budget(
    connection: PooledConnection, application_name: str, configured: int
) -> BudgetReading:
    (row,) = await connection.fetch(READING, application_name)  # an aggregate: one row
    return BudgetReading(
        max_connections=row["max_connections"],
        reserved=row["reserved"],
        observed=row["observed"],
        others=row["others"],
        configured=configured,
    )


class BudgetGuard:
    """Reads the budget through the pool; warns once when the fleet would not fit."""

    def __init__(self, database: Database, application_name: str, configured: int) -> None:
        self._database = database
        self._application_name = application_name
        self._configured = configured
        self.warnings = 0

    async def check(self) -> BudgetReading | None:
        """The budget now, or None while the database cannot be reached or refuses
        the connection (too many connections: the very shortfall this guards against)."""
        try:
            async with self._database.connection() as connection:
                reading = await read_budget(connection, self._application_name, self._configured)
        except (DatabaseUnavailableError, asyncpg.PostgresError) as error:
            logger.info("connection budget not read", error=repr(error))
            return None
        if reading.headroom < 0 and self.warnings == 0:
            self.warnings += 1
            logger.warning(
                "connection budget exceeded: the pools may open more connections than "
                "the database allows",
                configured=reading.configured,
                allowed=reading.allowed,
                max_connections=reading.max_connections,
                reserved=reading.reserved,
                other_applications=reading.others,
            )
        return reading

    async def watch(
        self, record: Callable[[Mapping[str, int]], None], interval_seconds: float
    ) -> None:
        """Check now and every interval, until cancelled (at shutdown)."""
        while True:
            reading = await self.check()
            if reading is not None:
                record(reading.figures())
            await asyncio.sleep(interval_seconds)
