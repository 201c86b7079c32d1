"""The ledger's tables come in their own revision, which downgrades cleanly."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config

from ..support.databases import BACKEND, migrate
from ..support.ledger import connect

LEDGER_TABLES = ["accounts", "idempotency_keys", "ledger_entries", "transfers"]
{%- if cookiecutter.auth in ["api_key", "both"] %}
# Revision 0006, the last: API keys.
KEY_TABLES = ["api_keys"]
{%- else %}
KEY_TABLES: list[str] = []
{%- endif %}
{%- if cookiecutter.background_worker == "yes" %}
# Revision 0004 (on top of the ledger): the outbox, webhooks and PgQueuer's tables.
WORKER_TABLES = [
    "outbox_events",
    "pgqueuer",
    "pgqueuer_log",
    "pgqueuer_schedules",
    "pgqueuer_statistics",
    "webhook_deliveries",
    "webhook_subscriptions",
]
HEAD_TABLES = sorted(LEDGER_TABLES + WORKER_TABLES + KEY_TABLES)
{%- else %}
HEAD_TABLES = sorted(LEDGER_TABLES + KEY_TABLES)
{%- endif %}


async def tables(database_url: str) -> list[str]:
    async with connect(database_url) as connection:
        rows = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version' ORDER BY tablename"
        )
    return [row["tablename"] for row in rows]


def test_revision_0002_adds_the_ledger_and_removes_it_again(database_url: str) -> None:
    assert asyncio.run(tables(database_url)) == HEAD_TABLES
    config = Config(str(BACKEND / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.downgrade(config, "0001")
    assert asyncio.run(tables(database_url)) == []
    migrate(database_url)
    assert asyncio.run(tables(database_url)) == HEAD_TABLES
