"""Outbox, webhook subscriptions and deliveries, and PgQueuer's job tables.

Revision ID: 0004
Revises: {{ ("0003" if cookiecutter.auth != "none" else "0002") if cookiecutter.example_domain == "ledger" else "0001" }}
Create Date: 2026-12-02
"""

from alembic import op
from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment

revision = "0004"
down_revision = "{{ ("0003" if cookiecutter.auth != "none" else "0002") if cookiecutter.example_domain == "ledger" else "0001" }}"
branch_labels = None
depends_on = None

STATEMENTS = (
    # One row per domain event, written in the transaction that caused it.
    """
    CREATE TABLE outbox_events (
        id uuid PRIMARY KEY,
        type text NOT NULL CHECK (char_length(type) BETWEEN 1 AND 100),
        payload jsonb NOT NULL,
        request_id text,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE webhook_subscriptions (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        url text NOT NULL CHECK (char_length(url) BETWEEN 1 AND 2000),
        secret text NOT NULL,
        event_types text[] NOT NULL,
        enabled boolean NOT NULL DEFAULT true,
        disabled_reason text,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    # One row per (event, subscription): the fan-out inserts it once, whatever
    # happens to the job that did it; the delivery job records its outcome here.
    """
    CREATE TABLE webhook_deliveries (
        event_id uuid NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
        subscription_id bigint NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
        status text NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'delivered', 'dead', 'abandoned')),
        attempts integer NOT NULL DEFAULT 0,
        last_status_code smallint,
        last_error text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (event_id, subscription_id)
    )
    """,
    """
    CREATE INDEX webhook_deliveries_subscription_status
    ON webhook_deliveries (subscription_id, status)
    """,
)


# The library's DDL as it ships it has integer and bigserial columns: squawk's
# advice for tables we design does not apply to it (ours above are bigint/identity).
THEIRS = "-- squawk-ignore-file prefer-bigint-over-int, prefer-identity"


def statements_of(script: str) -> list[str]:
    """One statement each (asyncpg prepares each on its own): split at the semicolons
    that end a line, except inside a $$-quoted function body."""
    statements, current = [], ""
    for part in script.split(";\n"):
        current += part + ";\n"
        if current.count("$$") % 2 == 0:
            if current.strip(" \n;"):
                statements.append(current.strip())
            current = ""
    return statements


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    # PgQueuer's own tables, from the version installed with the service: its schema
    # comes in through this chain of migrations like ours (a later PgQueuer that
    # changes it gets a migration of its own).
    install = QueryBuilderEnvironment().build_install_query(create_schema=False)
    first, *rest = statements_of(install)
    for statement in (f"{THEIRS}\n{first}", *rest):
        op.execute(statement)


def downgrade() -> None:
    for statement in statements_of(QueryBuilderEnvironment().build_uninstall_query()):
        op.execute(statement)
    op.execute("DROP TABLE webhook_deliveries, webhook_subscriptions, outbox_events")
