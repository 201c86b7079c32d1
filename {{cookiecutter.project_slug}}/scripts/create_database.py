"""Create the database named in a PostgreSQL URL unless it exists (safe to run twice)."""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlsplit, urlunsplit

import asyncpg


async def create_database(url: str) -> bool:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance_url = urlunsplit(parts._replace(path="/postgres"))
    connection = await asyncpg.connect(maintenance_url)
    try:
        if await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        # Identifiers cannot be bound as parameters; quote_ident makes the name safe.
        quoted = await connection.fetchval("SELECT quote_ident($1)", name)
        await connection.execute(f"CREATE DATABASE {quoted}")
        return True
    finally:
        await connection.close()


def main() -> None:
    url = sys.argv[1]
    created = asyncio.run(create_database(url))
    name = urlsplit(url).path.lstrip("/")
    print(f"database {name}: {'created' if created else 'already exists'}")


if __name__ == "__main__":
    main()
