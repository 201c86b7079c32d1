"""The server-side timeouts, stored on the database itself (ALTER DATABASE … SET).

Not asyncpg startup parameters: PgBouncer in transaction mode refuses those
("unsupported startup parameter"), and would not keep them per client anyway.
Not `SET LOCAL` in each transaction: that is one more statement per request, and a
read outside a transaction has none. A per-database default reaches every new
session, whichever role logs in (the owner, the application role) and whether
or not PgBouncer sits in between. `make init-db` (migrations/env.py) writes them.
"""

from __future__ import annotations

from ..configuration import DatabaseSettings


def timeouts(settings: DatabaseSettings) -> dict[str, str]:
    """The parameters every session of the service must have, as PostgreSQL shows them."""
    return {
        "statement_timeout": f"{settings.statement_timeout_ms}ms",
        "idle_in_transaction_session_timeout": (
            f"{settings.idle_in_transaction_session_timeout_ms}ms"
        ),
    }


def alter_database(database: str, settings: DatabaseSettings) -> list[str]:
    """The statements that store the timeouts as `database`'s defaults."""
    name = '"' + database.replace('"', '""') + '"'
    return [
        f"ALTER DATABASE {name} SET {parameter} = '{value}'"
        for parameter, value in timeouts(settings).items()
    ]
