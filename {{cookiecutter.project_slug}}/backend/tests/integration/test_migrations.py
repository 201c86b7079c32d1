"""Migrations take the database URL as the app does, libpq parameters included."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from ..support import databases


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    with databases.temporary_database(server_url, "empty") as name:
        yield databases.with_database(server_url, name)


async def revision(url: str) -> str | None:
    connection = await asyncpg.connect(url)
    try:
        value = await connection.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await connection.close()
    return None if value is None else str(value)


def test_a_url_with_libpq_parameters_migrates(empty_database_url: str) -> None:
    """Managed databases hand out URLs such as `...?sslmode=require`; the local
    server has no TLS, so `sslmode=prefer` stands in (SQLAlchemy's asyncpg dialect
    rejected the parameter whatever its value)."""
    url = f"{empty_database_url}?sslmode=prefer&application_name=migrations"
    databases.migrate(url)
    assert asyncio.run(revision(url)) == databases.head_revision()
