"""Create or update the API's own database role, as the owner of the database.

The migration connects as the owner (it creates tables); the API connects as
`{{ cookiecutter.package_name }}_app`, which may only read and write rows: CONNECT,
USAGE on the schema, SELECT/INSERT/UPDATE/DELETE on its tables, USAGE/SELECT on its
sequences, and the same on whatever the owner creates later (default privileges).
Safe to re-run: it sets the password and the grants again.

    APP_ROLE_PASSWORD=... APP_DATABASE__URL=<owner's URL> python scripts/app_role.py

`make app-role` runs it with the URL `make init-db` uses; the compose `migrate`
service runs it after `alembic upgrade head`. In the image: /app/scripts/app_role.py.
"""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg

ROLE = "{{ cookiecutter.package_name }}_app"
# Serialises two runs at once (two migrate jobs), which would both try CREATE ROLE.
LOCK_KEY = 0x61707072_6F6C65

# format() quotes the names (%I) and the password (%L) on the server: no SQL is
# assembled from strings here.
STATEMENTS = (
    # An existing role is altered only in the attributes it has wrong: naming SUPERUSER
    # at all in ALTER ROLE needs a superuser, which a managed database's owner is not.
    """SELECT CASE WHEN role.oid IS NULL
        THEN format('CREATE ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L',
            $1::text, $2::text)
        ELSE format('ALTER ROLE %I WITH LOGIN PASSWORD %L', $1::text, $2::text)
            || CASE WHEN role.rolsuper THEN ' NOSUPERUSER' ELSE '' END
            || CASE WHEN role.rolcreatedb THEN ' NOCREATEDB' ELSE '' END
            || CASE WHEN role.rolcreaterole THEN ' NOCREATEROLE' ELSE '' END END
        FROM (VALUES (1)) AS one LEFT JOIN pg_roles AS role ON role.rolname = $1""",
    "SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), $1::text)",
    "SELECT format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), $1::text)",
    """SELECT format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I',
        current_schema(), $1::text)""",
    """SELECT format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I',
        current_schema(), $1::text)""",
    """SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I
        GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
        current_user, current_schema(), $1::text)""",
    """SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I
        GRANT USAGE, SELECT ON SEQUENCES TO %I', current_user, current_schema(), $1::text)""",
    # The schema's revision is the migration's to write; the API only reads it.
    """SELECT format('REVOKE INSERT, UPDATE, DELETE ON TABLE %I.alembic_version FROM %I',
        current_schema(), $1::text) WHERE to_regclass('alembic_version') IS NOT NULL""",
)


async def grant(url: str, role: str, password: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            for index, query in enumerate(STATEMENTS):
                arguments = (role, password) if index == 0 else (role,)
                statement = await connection.fetchval(query, *arguments)
                if statement is not None:
                    await connection.execute(statement)
    finally:
        await connection.close()


def main() -> int:
    url = os.environ.get("APP_DATABASE__URL", "")
    password = os.environ.get("APP_ROLE_PASSWORD", "")
    problems = [
        f"app_role: {name} is not set: {what}"
        for name, value, what in (
            ("APP_DATABASE__URL", url, "the database owner's URL"),
            ("APP_ROLE_PASSWORD", password, f"the password to give role {ROLE}"),
        )
        if not value
    ]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    asyncio.run(grant(url, ROLE, password))
    print(f"app_role: role {ROLE} can log in and read and write the tables", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
