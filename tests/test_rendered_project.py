"""Representative variants rendered as a user would (post-generation checks on:
install, init_db, smoke), then the project's own lint, types and tests."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

TEMPLATE = Path(__file__).resolve().parents[1]
RESOLVER = TEMPLATE / "{{cookiecutter.project_slug}}" / "scripts" / "resolve_database.py"
REPRESENTATIVE = [
    pytest.param([], id="defaults"),
    pytest.param(["example_domain=none", "include_frontend=no", "cloud_target=kubernetes"],
                 id="skeleton"),
]


def make(project: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PATH": _path_with_venv(), "DATABASE_URL": _database_url(project.parent)}
    return subprocess.run(["make", *targets], cwd=project, capture_output=True, text=True,
                          check=False, env=env)


def _database_url(output: Path) -> str:
    """A database of this rendering's own (the rendered scripts honour DATABASE_URL), so
    variants with different migrations never share one, here or in other checkouts."""
    name = "rendered_" + hashlib.sha256(str(output).encode()).hexdigest()[:16]
    resolved = subprocess.run([sys.executable, str(RESOLVER), "--database", name],
                              capture_output=True, text=True, check=False,
                              env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"})
    assert resolved.returncode == 0, resolved.stderr
    return resolved.stdout.strip()


async def _drop_database(url: str) -> None:
    parts = urlsplit(url)
    connection = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        # The name is ours: "rendered_" and hex digits.
        await connection.execute(f"DROP DATABASE IF EXISTS {parts.path.lstrip('/')} WITH (FORCE)")
    finally:
        await connection.close()


def _path_with_venv() -> str:
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture(scope="module", params=REPRESENTATIVE)
def project(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    output = tmp_path_factory.mktemp("rendered")
    database_url = _database_url(output)
    environment = {k: v for k, v in os.environ.items() if k != "HIGHCONCURRENCY_SKIP_CHECKS"}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "cookiecutter", str(TEMPLATE), "--no-input",
             "--output-dir", str(output), *request.param],
            capture_output=True, text=True, check=False,
            env=environment | {"DATABASE_URL": database_url},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        for step in ("install", "init-db", "smoke"):
            assert f"✓ {step}" in result.stdout, result.stdout
        (project_dir,) = output.iterdir()
        yield project_dir
    finally:
        asyncio.run(_drop_database(database_url))


@pytest.mark.slow
@pytest.mark.xdist_group("rendered")
def test_post_generation_left_a_locked_migrated_project(project: Path) -> None:
    assert (project / "backend" / "uv.lock").is_file()
    assert (project / "backend" / ".venv" / "bin" / "python").exists()


@pytest.mark.slow
@pytest.mark.xdist_group("rendered")
def test_init_db_again_succeeds_and_changes_nothing(project: Path) -> None:
    result = make(project, "init-db")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "already exists" in result.stdout
    assert "Running upgrade" not in result.stderr


@pytest.mark.slow
@pytest.mark.xdist_group("rendered")
def test_projects_own_checks_pass(project: Path) -> None:
    result = make(project, "lint", "typecheck", "test")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert " passed" in result.stdout
