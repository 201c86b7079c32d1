"""The outbox relay: an event is written alone in the business transaction and
marked pending; the worker's relay moves pending events to delivery jobs in batches.

Events recorded before this revision already have their fan-out job; those whose
job is still there (queued; picked by a worker that may have died mid fan-out; held
after failing) are marked pending instead and the job dropped, so the relay delivers
them and no job of a type the worker no longer runs stays behind. An event whose
fan-out did commit gets no second delivery: the relay's insert skips existing rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Default true while adding (a constant: no table rewrite, every existing event
    # counts as relayed), then false for the rows written from now on.
    op.execute("ALTER TABLE outbox_events ADD COLUMN relayed boolean NOT NULL DEFAULT true")
    op.execute("ALTER TABLE outbox_events ALTER COLUMN relayed SET DEFAULT false")
    op.execute(
        """
        WITH dropped AS (
            DELETE FROM pgqueuer WHERE entrypoint = 'webhooks.fan_out'
            RETURNING payload
        )
        UPDATE outbox_events SET relayed = false
        FROM dropped WHERE outbox_events.id = encode(dropped.payload, 'hex')::uuid
        """
    )
    # Only the pending events, oldest first: the relay's claim reads this index, and
    # a business transaction adds one small entry to it.
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_events_pending "
            "ON outbox_events (created_at) WHERE NOT relayed"
        )
        # For the retention clean-up's range delete: a BRIN index costs an insert
        # almost nothing (rows arrive in created_at order) and stays tiny.
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_events_created_brin "
            "ON outbox_events USING brin (created_at)"
        )


def downgrade() -> None:
    # Pending events get back the fan-out job the previous code expects.
    op.execute(
        """
        INSERT INTO pgqueuer (priority, status, entrypoint, payload, headers)
        SELECT 0, 'queued', 'webhooks.fan_out', decode(replace(id::text, '-', ''), 'hex'),
            CASE WHEN request_id IS NULL THEN NULL
                ELSE jsonb_build_object('request_id', request_id) END
        FROM outbox_events WHERE NOT relayed
        """
    )
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS outbox_events_pending")
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS outbox_events_created_brin")
    op.execute("ALTER TABLE outbox_events DROP COLUMN relayed")
