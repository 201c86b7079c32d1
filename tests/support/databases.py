"""Databases of a test's own on the machine's shared PostgreSQL (trust): created
under a unique name, dropped afterwards (only ever the test's own)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from .commands import make

SERVER = "postgresql://postgres@127.0.0.1:5432"


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def fetch(url: str, query: str, *arguments: object) -> Any:
    """The first value of the query's first row."""
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(query, *arguments)
    finally:
        await connection.close()


async def execute(url: str, statements: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statements)
    finally:
        await connection.close()


def administer(statement: str, server: str = SERVER) -> None:
    """One statement on a server's `postgres` database (CREATE/DROP DATABASE, ROLE)."""
    asyncio.run(execute(f"{server}/postgres", statement))


def create_database(name: str) -> None:
    administer(f'CREATE DATABASE "{name}"')


def drop_database(name: str, server: str = SERVER) -> None:
    """Drops the database, its open sessions too; nothing if it is not there."""
    administer(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', server)


def drop_database_at(url: str) -> None:
    """`drop_database` of the database a URL names, on that URL's server."""
    parts = urlsplit(url)
    drop_database(parts.path.lstrip("/"), urlunsplit(parts._replace(path="")))


@contextlib.contextmanager
def migrated_database(project: Path, prefix: str, **environment: str) -> Iterator[str]:
    """A database of its own on the shared server, migrated by the project's
    `make init-db` (with `environment`, APP_* settings); its URL. Dropped afterwards."""
    name = unique_name(prefix)
    create_database(name)
    try:
        make(project, "init-db", **environment, APP_DATABASE__URL=f"{SERVER}/{name}")
        yield f"{SERVER}/{name}"
    finally:
        drop_database(name)
