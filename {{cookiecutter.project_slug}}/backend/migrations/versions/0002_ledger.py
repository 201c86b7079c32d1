"""Ledger: accounts, transfers, their ledger entries, and idempotency keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# 9007199254740991 = 2^53 - 1: balances and amounts stay exact as JSON numbers.
STATEMENTS = (
    """
    CREATE TABLE accounts (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        owner text NOT NULL CHECK (char_length(owner) BETWEEN 1 AND 200),
        currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
        balance_minor bigint NOT NULL
            CONSTRAINT accounts_balance_not_negative CHECK (balance_minor >= 0)
            CONSTRAINT accounts_balance_exact_in_json CHECK (balance_minor <= 9007199254740991),
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE transfers (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        from_account_id bigint NOT NULL REFERENCES accounts (id),
        to_account_id bigint NOT NULL REFERENCES accounts (id),
        amount_minor bigint NOT NULL CHECK (amount_minor BETWEEN 1 AND 9007199254740991),
        currency text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT transfers_two_accounts CHECK (from_account_id <> to_account_id)
    )
    """,
    # Signed amounts: an account's entries sum to its balance.
    """
    CREATE TABLE ledger_entries (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id bigint NOT NULL REFERENCES accounts (id),
        transfer_id bigint REFERENCES transfers (id),
        kind text NOT NULL CHECK (kind IN ('opening', 'debit', 'credit')),
        amount_minor bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT ledger_entries_sign
            CHECK (CASE kind WHEN 'debit' THEN amount_minor < 0 ELSE amount_minor > 0 END),
        CONSTRAINT ledger_entries_transfer CHECK ((kind = 'opening') = (transfer_id IS NULL))
    )
    """,
    # An account's transfers, in id order (keyset pagination), once each.
    """
    CREATE UNIQUE INDEX ledger_entries_account_transfer
        ON ledger_entries (account_id, transfer_id)
    """,
    """
    CREATE TABLE idempotency_keys (
        scope text NOT NULL,
        key text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
        fingerprint bytea NOT NULL,
        status_code smallint NOT NULL,
        content_type text NOT NULL,
        location text,
        body bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (scope, key)
    )
    """,
    "CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at)",
)


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE idempotency_keys, ledger_entries, transfers, accounts")
