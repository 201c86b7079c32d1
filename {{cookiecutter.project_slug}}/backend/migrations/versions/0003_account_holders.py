"""Account holders: the subject of the principal that opened each account.

Accounts opened before this revision belong to no principal (holder ''): only a
principal with the admin scope reads them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.execute(
        "ALTER TABLE accounts ADD COLUMN holder text NOT NULL DEFAULT '' "
        "CHECK (char_length(holder) <= 255)"
    )
    # Concurrently, outside the migration's transaction: writes to accounts go on meanwhile.
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_holder_id ON accounts (holder, id)"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS accounts_holder_id")
    op.execute("ALTER TABLE accounts DROP COLUMN holder")
