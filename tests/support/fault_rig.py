"""The fault tests' rig: the default service on a throwaway cluster of its own
(postgres_cluster), configured as those tests configure it, its log checked for the
database password, and the database-side views they wait on (locks, backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg

from .json_logs import json_lines
from .postgres_cluster import PASSWORD, ThrowawayCluster
from .service import Service, app_variables, running

DATABASE = "app"
APPLICATION_NAME = "ledger-api"  # the default project's slug: application_name in PostgreSQL
ACQUIRE_TIMEOUT = 1.0


def settings(cluster: ThrowawayCluster, **overrides: object) -> dict[str, str]:
    """APP_* variables: two workers on the cluster with the known password."""
    base = {
        "APP_DATABASE__URL": cluster.url(DATABASE),
        "APP_SERVER__WORKERS": "2",
        "APP_DATABASE__POOL__ACQUIRE_TIMEOUT_SECONDS": str(ACQUIRE_TIMEOUT),
        "APP_LOGGING__LEVEL": "info",
    }
    return base | app_variables(**overrides)


def log_entries(service: Service) -> list[dict[str, Any]]:
    return json_lines(service.log())


def assert_secret_never_logged(service: Service) -> None:
    lines = [line for line in service.log().split("\n") if PASSWORD in line]
    assert lines == [], lines


@contextmanager
def serving(project: Path, environment: dict[str, str]) -> Iterator[Service]:
    """The service running; once the test is done with it, its log is checked: no
    line holds the database password (connection errors included)."""
    with running(project, environment) as service:
        yield service
        assert_secret_never_logged(service)


@asynccontextmanager
async def locked_schema_table(cluster: ThrowawayCluster) -> AsyncIterator[asyncpg.Connection]:
    """Hold an ACCESS EXCLUSIVE lock on alembic_version: GET /version waits for it."""
    connection = await asyncpg.connect(cluster.url(DATABASE))
    try:
        async with connection.transaction():
            await connection.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
            yield connection
    finally:
        await connection.close()


async def backends(connection: asyncpg.Connection, *, waiting_on_lock: bool = False) -> int:
    """The service's connections to the database (those waiting for a lock)."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
    if waiting_on_lock:
        query += " AND wait_event_type = 'Lock'"
    # Inside a transaction PostgreSQL caches pg_stat_activity: drop that snapshot.
    await connection.execute("SELECT pg_stat_clear_snapshot()")
    count: int = await connection.fetchval(query, APPLICATION_NAME)
    return count


def started_workers(service: Service) -> set[int]:
    """The workers that have started (their lifespan's "started" line) and still run."""
    started = {entry["pid"] for entry in log_entries(service) if entry["msg"] == "started"}
    return {pid for pid in started if Path(f"/proc/{pid}").exists()}
