{%- set previous = "0006" if cookiecutter.auth in ("api_key", "both") else "0005" -%}
"""Outbox event ids in time order: the column's default, so every writer gets one.

A random (v4) id put each event's primary-key entry, and the relay's update of it,
on a random leaf of the index: after each checkpoint the first change to every leaf
logs a full page image, so once the index outgrows what one checkpoint interval
touches, nearly every event cost 8 kB of WAL more (README "Background worker").
UUIDv7's layout (RFC 9562: 48 bits of Unix milliseconds, version 7, then random
bits) keeps new entries on the rightmost leaves. PostgreSQL 18 has uuidv7(); this
function does the same on 15 and later. Existing ids stay as they are.

Revision ID: 0007
Revises: {{ previous }}
Create Date: 2026-12-03
"""

from alembic import op

revision = "0007"
down_revision = "{{ previous }}"
branch_labels = None
depends_on = None

# The random bits of gen_random_uuid() under a millisecond timestamp, then the
# version nibble 0100 (4) turned into 0111 (7); the variant bits are already RFC's.
# LANGUAGE sql with one expression: the planner inlines it into the INSERT.
CREATE_FUNCTION = """
CREATE FUNCTION outbox_event_id() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
        substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
        FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$
"""


def upgrade() -> None:
    op.execute(CREATE_FUNCTION)
    op.execute("ALTER TABLE outbox_events ALTER COLUMN id SET DEFAULT outbox_event_id()")


def downgrade() -> None:
    op.execute("ALTER TABLE outbox_events ALTER COLUMN id DROP DEFAULT")
    op.execute("DROP FUNCTION outbox_event_id()")
