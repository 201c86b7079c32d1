"""Lint the SQL of every migration with squawk: what `alembic upgrade --sql` emits for
each revision, one file per revision, so squawk sees the tables each one creates.

Usage: backend/.venv/bin/python scripts/lint_migrations.py [alembic.ini]  (make lint
runs it with backend/alembic.ini).
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

BACKEND = Path(__file__).resolve().parents[1] / "backend"
SQUAWK = Path(sys.executable).parent / "squawk"


def revision_sql(config: Config, down: str | None, revision: str) -> str:
    buffer = io.StringIO()
    config.output_buffer = buffer
    command.upgrade(config, f"{down or 'base'}:{revision}", sql=True)
    # Alembic's own bookkeeping (its alembic_version table) is not the project's schema.
    statements = buffer.getvalue().split("\n\n")
    return "\n\n".join(part for part in statements if "alembic_version" not in part)


def main(alembic_ini: Path) -> int:
    config = Config(str(alembic_ini))
    config.attributes["configure_logger"] = False
    revisions = list(ScriptDirectory.from_config(config).walk_revisions())
    with tempfile.TemporaryDirectory(prefix="migrations-sql-") as directory:
        files = []
        for script in revisions:
            down = script.down_revision
            if not (down is None or isinstance(down, str)):
                continue  # a merge revision: its SQL is only the version bump
            path = Path(directory) / f"{Path(script.path).stem}.sql"
            path.write_text(revision_sql(config, down, script.revision))
            files.append(str(path))
        squawk_config = BACKEND / ".squawk.toml"
        result = subprocess.run(
            [str(SQUAWK), "--config", str(squawk_config), *sorted(files)], check=False
        )
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else BACKEND / "alembic.ini"))
