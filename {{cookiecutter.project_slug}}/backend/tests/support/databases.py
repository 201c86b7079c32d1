"""Throwaway databases on the resolved PostgreSQL server, for integration tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from {{ cookiecutter.package_name }}.configuration import DatabaseSettings
from {{ cookiecutter.package_name }}.db.session_settings import alter_database

PROJECT_ROOT = Path(__file__).resolve().parents[3]
BACKEND = PROJECT_ROOT / "backend"


def server_url() -> str:
    """The server to test against: $DATABASE_URL, else scripts/resolve_database.py."""
    if url := os.environ.get("DATABASE_URL"):
        return url
    resolver = PROJECT_ROOT / "scripts" / "resolve_database.py"
    result = subprocess.run(  # noqa: S603
        [sys.executable, str(resolver), "--database", "postgres"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        message = f"no PostgreSQL for the integration tests:\n{result.stderr}"
        raise RuntimeError(message)
    return result.stdout.strip()


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def _execute(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _admin(url: str, statement: str) -> None:
    await _execute(with_database(url, "postgres"), statement)


async def store_session_timeouts(database_url: str, settings: DatabaseSettings) -> None:
    """What `make init-db` stores on a database, for the sessions opened after; CREATE
    DATABASE … TEMPLATE copies no ALTER DATABASE settings, so each clone needs it again."""
    name = urlsplit(database_url).path.lstrip("/")
    await _execute(database_url, *alter_database(name, settings))


@contextlib.contextmanager
def temporary_database(url: str, prefix: str, template: str | None = None) -> Iterator[str]:
    """A new database on `url`'s server (a copy of `template`, if given), dropped
    afterwards; yields its name."""
    # unique_name() gives letters, digits and underscores only: safe to splice in.
    name = unique_name(prefix)
    clause = f" TEMPLATE {template}" if template else ""
    asyncio.run(_admin(url, f"CREATE DATABASE {name}{clause}"))
    try:
        yield name
    finally:
        asyncio.run(_admin(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(
        parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port or 5432}")
    )


@contextlib.contextmanager
def temporary_role(url: str, connection_limit: int) -> Iterator[str]:
    """A login role allowed `connection_limit` connections, dropped afterwards; yields
    the URL of `url`'s database as that role."""
    name, password = unique_name("role"), uuid.uuid4().hex
    # Letters, digits and underscores only: safe to splice in.
    limit = f"CONNECTION LIMIT {connection_limit}"
    asyncio.run(_admin(url, f"CREATE ROLE {name} LOGIN PASSWORD '{password}' {limit}"))
    try:
        yield with_user(url, name, password)
    finally:
        asyncio.run(_admin(url, f"DROP ROLE IF EXISTS {name}"))


def alembic_config(database_url: str) -> Config:
    config = Config(str(BACKEND / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def migrate(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str:
    """The latest revision in backend/migrations/versions."""
    script = ScriptDirectory.from_config(Config(str(BACKEND / "alembic.ini")))
    head = script.get_current_head()
    assert head is not None
    return head
