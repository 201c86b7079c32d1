"""squawk (scripts/lint_migrations.py, in `make lint`) passes the project's migrations
and refuses a revision that would lock a busy table: each case on a copy of them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[2]
LINT = BACKEND.parent / "scripts" / "lint_migrations.py"
CREATE_TABLE = """
revision = "9001"
down_revision = "{down}"


def upgrade() -> None:
    op.execute("CREATE TABLE invoices (id bigint PRIMARY KEY, total_minor bigint)")
"""
# A plain CREATE INDEX blocks writes to the table while it builds; NOT NULL without a
# default fails on existing rows, or rewrites the table; both in one bad revision.
LOCKING = """
revision = "9002"
down_revision = "9001"


def upgrade() -> None:
    op.execute("CREATE INDEX invoices_total ON invoices (total_minor)")
    op.execute("ALTER TABLE invoices ADD COLUMN currency text NOT NULL")
"""


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """A copy of alembic.ini and migrations/; returns the copy's alembic.ini."""
    shutil.copytree(BACKEND / "migrations", tmp_path / "migrations")
    shutil.copy(BACKEND / "alembic.ini", tmp_path / "alembic.ini")
    return tmp_path / "alembic.ini"


def add_revision(alembic_ini: Path, name: str, body: str) -> None:
    versions = alembic_ini.parent / "migrations" / "versions"
    head = sorted(path.stem.split("_")[0] for path in versions.glob("[0-9]*.py"))[-1]
    source = "from alembic import op\n" + body.replace("{down}", head)
    (versions / f"{name}.py").write_text(source)


def lint(alembic_ini: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (this venv's python, our own script)
        [sys.executable, str(LINT), str(alembic_ini)],
        capture_output=True,
        text=True,
        check=False,
        cwd=BACKEND,
    )


def test_the_project_migrations_pass(migrations: Path) -> None:
    add_revision(migrations, "9001_invoices", CREATE_TABLE)
    result = lint(migrations)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_revision_that_locks_a_busy_table_is_refused(migrations: Path) -> None:
    add_revision(migrations, "9001_invoices", CREATE_TABLE)
    add_revision(migrations, "9002_invoices_total", LOCKING)
    result = lint(migrations)
    assert result.returncode != 0
    assert "require-concurrent-index-creation" in result.stdout
    assert "adding-required-field" in result.stdout
    assert "9002_invoices_total.sql" in result.stdout
    assert "9001_invoices.sql" not in result.stdout
