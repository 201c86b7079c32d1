"""`make app-role` (backend/scripts/app_role.py) against the real local PostgreSQL:
the API's role gets row privileges on the migrated tables and on tables created
later, nothing more; it refuses to run without APP_ROLE_PASSWORD; a second run
changes the password and keeps the grants. The project gets a name of its own, so
its role (`<package>_app`, cluster-wide) is this test's alone, and is dropped."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .support.commands import run
from .support.databases import SERVER, administer, create_database, drop_database, fetch
from .support.paths import BIN
from .support.rendering import baked

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")

pytestmark = pytest.mark.slow


@pytest.fixture
def migrated(cookies: Any) -> Iterator[tuple[Path, str, str]]:
    """A project migrated into a database of its own: (project, owner's URL, role)."""
    suffix = uuid.uuid4().hex[:8]
    answers, project = baked(cookies, {"project_name": f"Role {suffix}"})
    package = answers["package_name"]
    url = f"{SERVER}/{package}"
    create_database(package)
    try:
        env = os.environ | {"APP_DATABASE__URL": url, "PYTHONPATH": "src"}
        upgrade = run([str(BIN / "alembic"), "upgrade", "head"], project / "backend", env)
        assert upgrade.returncode == 0, upgrade.stderr
        yield project, url, f"{package}_app"
    finally:
        drop_database(package)
        administer(f'DROP ROLE IF EXISTS "{package}_app"')


def app_role(project: Path, url: str, password: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "APP_ROLE_PASSWORD"}
    env |= {"APP_DATABASE__URL": url} | ({"APP_ROLE_PASSWORD": password} if password else {})
    return run(["make", "app-role", f"VENV_BIN={BIN}"], project, env, timeout=120)


def row_privileges(url: str, role: str, table: str) -> dict[str, bool]:
    query = "SELECT has_table_privilege($1, $2, $3)"
    return {p: asyncio.run(fetch(url, query, role, table, p)) for p in PRIVILEGES}


def test_app_role_needs_a_password(migrated: tuple[Path, str, str]) -> None:
    project, url, role = migrated
    refused = app_role(project, url, None)
    assert refused.returncode != 0
    assert "APP_ROLE_PASSWORD is not set" in refused.stderr
    assert asyncio.run(fetch(url, "SELECT count(*) FROM pg_roles WHERE rolname = $1", role)) == 0


def test_app_role_grants_rows_only_and_is_idempotent(migrated: tuple[Path, str, str]) -> None:
    project, url, role = migrated
    first = app_role(project, url, "first-password")
    assert first.returncode == 0, first.stderr
    hash_query = "SELECT rolpassword FROM pg_authid WHERE rolname = $1"
    first_hash = asyncio.run(fetch(url, hash_query, role))
    flags = (
        "SELECT (rolcanlogin, rolsuper, rolcreatedb, rolcreaterole)"
        " FROM pg_roles WHERE rolname = $1"
    )
    assert tuple(asyncio.run(fetch(url, flags, role))) == (True, False, False, False)

    again = app_role(project, url, "second-password")
    assert again.returncode == 0, again.stderr
    assert asyncio.run(fetch(url, hash_query, role)) not in {None, first_hash}

    tables = (
        asyncio.run(
            fetch(
                url,
                "SELECT array_agg(tablename::text) FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version'",
            )
        )
        or []
    )
    for table in tables:
        assert all(row_privileges(url, role, table).values()), table
    assert row_privileges(url, role, "alembic_version") == {
        "SELECT": True,
        "INSERT": False,
        "UPDATE": False,
        "DELETE": False,
    }
    assert (
        asyncio.run(fetch(url, "SELECT has_schema_privilege($1, 'public', 'CREATE')", role))
        is False
    )
    # A table the owner creates later (the next migration) is covered by default privileges.
    asyncio.run(fetch(url, "CREATE TABLE later (id bigserial PRIMARY KEY)"))
    assert all(row_privileges(url, role, "later").values())
    assert asyncio.run(
        fetch(url, "SELECT has_sequence_privilege($1, 'later_id_seq', 'USAGE')", role)
    )


def test_app_role_reruns_for_an_owner_who_is_not_a_superuser(
    migrated: tuple[Path, str, str],
) -> None:
    """A managed database's owner has CREATEROLE but is no superuser: a second run (the
    next deploy's migration job) must still update the role it created."""
    project, url, role = migrated
    owner = f"{role}_owner"
    database = url.rsplit("/", 1)[1]
    asyncio.run(fetch(url, f'CREATE ROLE "{owner}" LOGIN CREATEROLE'))
    try:
        asyncio.run(fetch(url, f'ALTER DATABASE "{database}" OWNER TO "{owner}"'))
        asyncio.run(fetch(url, f'ALTER SCHEMA public OWNER TO "{owner}"'))
        # The migrated tables become the owner's, as if it had migrated them.
        asyncio.run(
            fetch(
                url,
                "DO $$ DECLARE t text; BEGIN FOR t IN SELECT tablename FROM pg_tables"
                " WHERE schemaname = 'public' LOOP"
                f" EXECUTE format('ALTER TABLE %I OWNER TO %I', t, '{owner}');"
                " END LOOP; END $$",
            )
        )
        as_owner = url.replace("postgres@", f"{owner}@", 1)
        for password in ("first-password", "second-password"):
            run = app_role(project, as_owner, password)
            assert run.returncode == 0, run.stderr[-2000:]
        flags = "SELECT (rolsuper, rolcreatedb, rolcreaterole) FROM pg_roles WHERE rolname = $1"
        assert tuple(asyncio.run(fetch(url, flags, role))) == (False, False, False)
    finally:
        # The database and the role go first (the fixture), then the owner of both.
        drop_database(database)
        administer(f'DROP ROLE IF EXISTS "{role}"')
        administer(f'DROP ROLE IF EXISTS "{owner}"')
