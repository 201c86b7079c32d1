"""Representative variants rendered as a user would (post-generation checks on:
install, init_db, smoke), then the project's own lint, types and tests."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from .support.commands import run
from .support.databases import SERVER, drop_database, execute, unique_name
from .support.rendering import attempt, checked_environment
from .support.service import running
from .support.template_files import shell_block

REPRESENTATIVE = [
    pytest.param([], id="defaults"),
    pytest.param(
        ["example_domain=none", "include_frontend=no", "cloud_target=kubernetes"], id="skeleton"
    ),
]


def make(
    project: Path, *targets: str, database: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`make targets` in the project, on its own database unless `database` names one."""
    env = checked_environment(project.parent.name)
    if database is not None:
        env = checked_environment(database) | {"APP_DATABASE__URL": f"{SERVER}/{database}"}
    return run(["make", *targets], project, env)


@pytest.fixture(scope="module", params=REPRESENTATIVE)
def project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    database = unique_name("rendered")
    output = tmp_path_factory.mktemp("rendered") / database
    output.mkdir()
    result = attempt(output, *request.param, checks=True, env=checked_environment(database))
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        for step in ("install", "init-db", "smoke"):
            assert f"✓ {step}" in result.stdout, result.stdout
        (project_dir,) = output.iterdir()
        yield project_dir
    finally:
        drop_database(database)


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


async def _create_migrated_by_another_project(database: str) -> None:
    await execute(f"{SERVER}/postgres", f"CREATE DATABASE {database}")
    await execute(
        f"{SERVER}/{database}",
        "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);"
        "INSERT INTO alembic_version VALUES ('9999_elsewhere')",
    )


@pytest.mark.slow
@pytest.mark.xdist_group("rendered")
def test_init_db_on_another_projects_database_says_so(project: Path) -> None:
    database = unique_name("foreign")
    asyncio.run(_create_migrated_by_another_project(database))
    try:
        result = make(project, "init-db", database=database)
    finally:
        drop_database(database)
    assert result.returncode != 0
    assert "another project migrated it" in result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.xdist_group("rendered")
def test_projects_own_checks_pass(project: Path) -> None:
    """They pass, and what they leave behind (caches, reports) is git-ignored."""
    if not (project / ".git").is_dir():
        git(project, "init", "--quiet")
    before = untracked(project)
    result = make(project, "lint", "typecheck", "test")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert " passed" in result.stdout
    assert untracked(project) - before == set()


def untracked(project: Path) -> set[str]:
    """Files git would offer to add: neither tracked nor ignored."""
    listing = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(listing.stdout.splitlines())


@pytest.mark.slow
@pytest.mark.xdist_group("rendered")
def test_a_new_migration_is_numbered_like_the_shipped_ones_and_passes_the_checks(
    project: Path,
) -> None:
    versions = project / "backend" / "migrations" / "versions"
    last = max(int(path.name[:4]) for path in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    created = versions / f"{last + 1:04d}_add_invoices.py"
    readme = (project / "README.md").read_text()
    assert f'make migration NAME="add invoices"   # {created.relative_to(project)}:' in readme
    result = make(project, "migration", "NAME=add invoices")
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert created.is_file(), sorted(path.name for path in versions.iterdir())
        assert f'revision = "{last + 1:04d}"' in created.read_text()
        assert f'down_revision = "{last:04d}"' in created.read_text()
        checks = make(project, "lint", "typecheck", "security")
        assert checks.returncode == 0, checks.stdout[-4000:] + checks.stderr[-4000:]
        # The migration tests upgrade a fresh database to the new head.
        tests = subprocess.run(
            [
                ".venv/bin/pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/integration/test_migrations.py",
            ],
            cwd=project / "backend",
            capture_output=True,
            text=True,
            check=False,
            env=checked_environment(project.parent.name),
        )
        assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-4000:]
    finally:
        created.unlink(missing_ok=True)


@pytest.mark.slow
@pytest.mark.xdist_group("rendered")
def test_make_migration_takes_any_name_and_skips_alembics_own_ids(project: Path) -> None:
    """A plain `alembic revision` id that starts with digits does not set the number, and
    quotes, backticks and backslashes in NAME are the message, never shell or Python."""
    versions = project / "backend" / "migrations" / "versions"
    last = max(int(path.name[:4]) for path in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    plain = run(
        [".venv/bin/alembic", "revision", "--rev-id", "1234abcd5678", "-m", "plain"],
        project / "backend",
    )
    # Run by a shell, the backticks would create backend/ran. `$` is left out: make
    # itself expands it in a command-line variable.
    marker = project / "backend" / "ran"
    name = 'add "status"; `touch ran` \\ """ end"'
    result = make(project, "migration", f"NAME={name}")
    try:
        assert plain.returncode == 0, plain.stdout + plain.stderr
        assert result.returncode == 0, result.stdout + result.stderr
        assert not marker.exists(), "NAME ran as a shell command"
        (revision,) = versions.glob(f"{last + 1:04d}_*.py")
        module = ast.parse(revision.read_text())
        assert (ast.get_docstring(module) or "").splitlines()[0] == name
        assert 'down_revision = "1234abcd5678"' in revision.read_text()
        lint = make(project, "lint")
        assert lint.returncode == 0, lint.stdout[-4000:] + lint.stderr[-4000:]
    finally:
        for path in (*versions.glob("1234abcd5678_*.py"), *versions.glob(f"{last + 1:04d}_*.py")):
            path.unlink()


async def _row_counts(database: str) -> dict[str, int]:
    connection = await asyncpg.connect(f"{SERVER}/{database}")
    try:
        tables = await connection.fetch(
            "SELECT quote_ident(table_name) AS name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        return {
            row["name"]: await connection.fetchval(f"SELECT count(*) FROM {row['name']}")
            for row in tables
        }
    finally:
        await connection.close()


@pytest.mark.slow
@pytest.mark.xdist_group("rendered")
def test_smoke_leaves_no_trace_in_the_database(project: Path) -> None:
    database = project.parent.name
    before = asyncio.run(_row_counts(database))
    result = make(project, "smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke test passed" in result.stdout
    assert asyncio.run(_row_counts(database)) == before


def json_documents(text: str) -> list[Any]:
    """The pretty-printed JSON documents (jq's output) in text, in order."""
    decoder, documents, position = json.JSONDecoder(), list[Any](), 0
    while (start := text.find("{\n", position)) != -1:
        document, position = decoder.raw_decode(text, start)
        documents.append(document)
    return documents


@pytest.mark.slow
@pytest.mark.xdist_group("rendered")
def test_the_readmes_curl_lines_work_against_the_running_service(project: Path) -> None:
    if not (project / "backend" / "tests" / "support" / "ledger.py").is_file():
        # example_domain=none: no ledger endpoints, so no examples of calling them.
        assert "### By hand, with curl" not in (project / "README.md").read_text()
        return
    script = shell_block((project / "README.md").read_text(), "### By hand, with curl")
    database = project.parent.name
    before = asyncio.run(_row_counts(database))
    with running(project, {"APP_DATABASE__URL": f"{SERVER}/{database}"}) as service:
        result = run(
            ["bash", "-euo", "pipefail", "-c", script],
            env=os.environ
            | {"API": service.base_url}
            | ({"TOKEN": service.auth_token} if service.auth_token else {}),
            timeout=60,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    after = asyncio.run(_row_counts(database))
    assert (after["accounts"] - before["accounts"], after["transfers"] - before["transfers"]) == (
        2,
        1,
    )
    # The transfer, then its replay: the same status, the replay marked as such.
    assert re.findall(r"^HTTP/[\d.]+ (\d+)", result.stdout, re.MULTILINE) == ["201", "201"]
    assert len(re.findall(r"^idempotent-replayed: true", result.stdout, re.I | re.M)) == 1
    pages = [document for document in json_documents(result.stdout) if "items" in document]
    assert len(pages) == 2, result.stdout
    assert pages[0]["next_cursor"]
    assert len(pages[0]["items"]) == len(pages[1]["items"]) == 1
    assert pages[1]["items"][0]["id"] > pages[0]["items"][0]["id"]


def git(project: Path, *arguments: str) -> None:
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env = (
        os.environ | identity | {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    )
    subprocess.run(["git", *arguments], cwd=project, check=True, capture_output=True, env=env)


@pytest.mark.slow
@pytest.mark.xdist_group("rendered")
def test_pre_commit_runs_the_makefiles_checks_offline(project: Path) -> None:
    """`repo: local` hooks calling make: they pass on the project as rendered, and stop
    a commit whose Python ruff would reformat."""
    if not (project / ".git").is_dir():
        git(project, "init", "--quiet")
    git(project, "add", "--all")
    pre_commit = [str(project / "backend" / ".venv" / "bin" / "pre-commit"), "run", "--all-files"]
    env = checked_environment(project.parent.name)

    def commit_hooks() -> subprocess.CompletedProcess[str]:
        return run(pre_commit, project, env)

    clean = commit_hooks()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert re.search(r"^make lint\.+Passed$", clean.stdout, re.M), clean.stdout
    assert re.search(r"^make typecheck\.+Passed$", clean.stdout, re.M), clean.stdout
    sloppy = project / "scripts" / "sloppy.py"
    sloppy.write_text("x = {'a':1}\n")
    try:
        git(project, "add", "--all")
        dirty = commit_hooks()
    finally:
        sloppy.unlink()
        git(project, "add", "--all")
    assert dirty.returncode != 0
    assert re.search(r"^make lint\.+Failed$", dirty.stdout, re.M), dirty.stdout


@pytest.mark.slow
@pytest.mark.xdist_group("rendered")
def test_make_lint_lints_the_openapi_description(project: Path) -> None:
    """Redocly CLI's recommended rules (redocly.yaml) pass with no warning on the
    description the service serves, and do catch a description without servers."""
    result = make(project, "lint-openapi")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "Your API description is valid" in result.stdout + result.stderr
    assert "warning " not in result.stdout + result.stderr
    description = json.loads((project / "build" / "openapi.json").read_text())
    assert description["servers"]
    del description["servers"]
    broken = project / "build" / "no-servers.json"
    broken.write_text(json.dumps(description))
    redocly = ["npx", "--no-install", "redocly", "lint", "--format=stylish", str(broken)]
    env = os.environ | {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    caught = run(redocly, project, env)
    assert caught.returncode != 0
    assert "no-empty-servers" in caught.stdout + caught.stderr
