{%- set previous = "0005" if cookiecutter.background_worker == "yes" else (("0003" if cookiecutter.auth != "none" else "0002") if cookiecutter.example_domain == "ledger" else "0001") -%}
"""API keys: one row a key, its secret stored only as a keyed hash (auth/api_keys.py).

Revision ID: 0006
Revises: {{ previous }}
Create Date: 2026-12-03
"""

from alembic import op

revision = "0006"
down_revision = "{{ previous }}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE api_keys (
            id text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),
            name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
            subject text NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 255),
            scopes text[] NOT NULL,
            secret_hash bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        )
        """
    )
    # One active key a name: `make revoke-api-key NAME=…` names exactly one.
    op.execute(
        "CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP TABLE api_keys")
