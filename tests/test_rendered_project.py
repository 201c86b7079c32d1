"""Representative variants rendered as a user would (post-generation checks on:
install, init_db, smoke), then the project's own lint, types and tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parents[1]
REPRESENTATIVE = [
    pytest.param([], id="defaults"),
    pytest.param(
        ["example_domain=none", "include_frontend=no", "cloud_target=kubernetes"], id="skeleton"
    ),
]


def make(project: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", *targets],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"PATH": _path_with_venv()},
    )


def _path_with_venv() -> str:
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture(scope="module", params=REPRESENTATIVE)
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("rendered")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            str(TEMPLATE),
            "--no-input",
            "--output-dir",
            str(output),
            *request.param,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "HIGHCONCURRENCY_SKIP_CHECKS"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for step in ("install", "init-db", "smoke"):
        assert f"✓ {step}" in result.stdout, result.stdout
    (project_dir,) = output.iterdir()
    return project_dir


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
