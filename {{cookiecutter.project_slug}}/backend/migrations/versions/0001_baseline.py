"""Baseline: the empty schema every later revision builds on.

It gives `alembic_version` a first revision, so `/version` and deploy checks can
tell a migrated database from an empty one.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to create yet."""


def downgrade() -> None:
    """Nothing to drop."""
