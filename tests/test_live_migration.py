"""An expand revision (a nullable column and an index built CONCURRENTLY) applied with
`make init-db` while the previous code serves k6's smoke traffic, against the same
database: no 5xx, and k6's smoke thresholds hold (its p(99) included) throughout.

The rendered service runs as deployed (`python -m <package>`, two uvicorn workers);
k6 is the rendered project's own (k6/load_test.js, a dev dependency).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from .support.commands import make, run
from .support.databases import migrated_database
from .support.json_logs import finished_requests
from .support.k6 import ENVIRONMENT as K6_ENVIRONMENT
from .support.k6 import k6_smoke_command, latency_bounds_ms
from .support.service import running

pytestmark = pytest.mark.xdist_group("live-migration")

TRAFFIC_SECONDS = 30
MIGRATE_AFTER_SECONDS = 10
EXPAND = '''"""Expand: transfers get a free-text reference (README: expand, then contract).

Revision ID: {revision}
Revises: {down_revision}
"""

from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE transfers ADD COLUMN IF NOT EXISTS reference text")
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction. Safe to run again: an
    # interrupted build leaves the index INVALID, dropped here and built again.
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS transfers_reference")
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS transfers_reference ON transfers (reference)"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS transfers_reference")
    op.execute("ALTER TABLE transfers DROP COLUMN reference")
'''


@pytest.fixture
def database(installed_default: Path) -> Iterator[str]:
    """A database of its own, migrated to the previous code's head."""
    with migrated_database(installed_default, "live_migration") as url:
        yield url


@pytest.fixture
def expand_revision(installed_default: Path) -> Iterator[Path]:
    """The new revision, in the project only while the test runs (it is shared)."""
    versions = installed_default / "backend" / "migrations" / "versions"
    # After the project's head, whichever revisions its answers shipped.
    head = max(int(path.name[:4]) for path in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    revision = f"{head + 1:04d}"
    path = versions / f"{revision}_expand.py"
    path.write_text(EXPAND.format(revision=revision, down_revision=f"{head:04d}"))
    yield path
    path.unlink()


async def index_state(url: str) -> tuple[str, bool, bool]:
    connection = await asyncpg.connect(url)
    try:
        version = await connection.fetchval("SELECT version_num FROM alembic_version")
        column = await connection.fetchval(
            "SELECT is_nullable = 'YES' FROM information_schema.columns "
            "WHERE table_name = 'transfers' AND column_name = 'reference'"
        )
        valid = await connection.fetchval(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'transfers_reference'::regclass"
        )
    finally:
        await connection.close()
    return version, bool(column), bool(valid)


def test_an_expand_revision_under_traffic_sheds_nothing(
    installed_default: Path, database: str, expand_revision: Path, tmp_path: Path
) -> None:
    project = installed_default
    _, p99_bound = latency_bounds_ms(project, "smoke")
    # The revision is one `make lint` (squawk) lets through, as the README's example is.
    lint = run(
        [str(project / "backend" / ".venv" / "bin" / "python"), "scripts/lint_migrations.py"],
        project,
        timeout=120,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    summary_file = tmp_path / "summary.json"
    environment = {"APP_DATABASE__URL": database, "APP_SERVER__WORKERS": "2"}
    with running(project, environment) as service:
        k6 = subprocess.Popen(
            k6_smoke_command(
                project / "backend" / ".venv" / "bin" / "k6",
                service.base_url,
                f"{TRAFFIC_SECONDS}s",
                "-e",
                f"SUMMARY_FILE={summary_file}",
                *([f"--env=TOKEN={service.auth_token}"] if service.auth_token else []),
            ),
            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=os.environ | K6_ENVIRONMENT,
        )  # fmt: skip
        try:
            time.sleep(MIGRATE_AFTER_SECONDS)
            started = time.monotonic()
            make(project, "init-db", APP_DATABASE__URL=database)
            migration_seconds = time.monotonic() - started
            output, _ = k6.communicate(timeout=TRAFFIC_SECONDS + 120)
        finally:
            if k6.poll() is None:
                k6.kill()
                k6.wait()
        statuses = [entry["status"] for entry in finished_requests(service.log())]
    metrics = json.loads(summary_file.read_text())["metrics"]
    p99 = metrics["http_req_duration"]["values"]["p(99)"]
    requests = metrics["http_reqs"]["values"]["count"]
    print(
        f"expand under k6 smoke: {requests} requests, migration {migration_seconds:.2f} s, "
        f"p(99) {p99:.1f} ms (bound {p99_bound}), statuses {sorted(set(statuses))}"
    )
    assert k6.returncode == 0, output  # every smoke threshold held, p(99) included
    assert p99 < p99_bound
    assert [status for status in statuses if status >= 500] == []
    assert len(statuses) >= requests
    assert asyncio.run(index_state(database)) == (expand_revision.name[:4], True, True)
