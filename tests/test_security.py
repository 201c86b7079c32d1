"""Static security checks of every variant: bandit through the project's own Make
target, the image installs exactly the lock, and no secret is written into the
configuration or the image. (The image's non-root user: tests/test_shipped_files.py.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from .support.commands import run, with_tools
from .support.paths import BIN

# user:password@ in a URL.
URL_WITH_PASSWORD = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


@pytest.fixture
def project(variant: dict[str, str], bake: Any) -> Path:
    project: Path = bake(variant)
    return project


def make_security(project: Path) -> subprocess.CompletedProcess[str]:
    """The project's own target, with bandit from this environment."""
    return run(["make", "security", f"VENV_BIN={BIN}"], project, timeout=300)


def test_bandit_finds_nothing_of_medium_or_high_severity(project: Path) -> None:
    result = make_security(project)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.parametrize("variant", [{}], ids=["defaults"])
def test_bandit_target_fails_on_a_medium_finding(project: Path) -> None:
    package = next((project / "backend" / "src").iterdir())
    (package / "planted.py").write_text('import tempfile\n\nPATH = "/tmp/planted"\n')
    result = make_security(project)
    assert result.returncode != 0
    assert "B108" in result.stdout  # hardcoded temporary directory: medium


def test_the_image_installs_exactly_the_lock(project: Path) -> None:
    parser = DockerfileParser(path=str(project / "backend" / "Dockerfile"))
    runs = [entry["value"] for entry in parser.structure if entry["instruction"] == "RUN"]
    syncs = [command for command in runs if "uv sync" in command]
    assert syncs, runs
    assert all("--locked" in command for command in syncs), syncs
    assert not any(re.search(r"\bpip install\b(?!.*\buv==)", command) for command in runs), runs


def test_no_secret_in_the_configuration_or_the_image(project: Path) -> None:
    configuration = project / "backend" / "configuration"
    for path in configuration.glob("*.yaml"):
        assert not URL_WITH_PASSWORD.search(path.read_text()), path
    production = yaml.safe_load((configuration / "production.yaml").read_text())
    assert "url" not in production.get("database", {}), "production takes the URL from secrets"
    parser = DockerfileParser(path=str(project / "backend" / "Dockerfile"))
    for entry in parser.structure:
        if entry["instruction"] in {"ENV", "ARG"}:
            assert not re.search(r"PASSWORD|SECRET|TOKEN|DATABASE", entry["value"]), entry


@pytest.mark.parametrize("variant", [{}], ids=["defaults"])
def test_a_lock_that_no_longer_matches_is_refused(project: Path) -> None:
    """`uv sync --locked` (the image's install) fails once pyproject.toml and uv.lock
    disagree, rather than resolving something else."""
    env = with_tools()
    backend = project / "backend"

    def uv(*args: str) -> subprocess.CompletedProcess[str]:
        return run(["uv", *args], backend, env)

    locked = uv("lock")
    assert locked.returncode == 0, locked.stderr
    assert uv("lock", "--locked").returncode == 0
    pyproject = backend / "pyproject.toml"
    text = pyproject.read_text().replace('"orjson>=', '"six>=1.16",\n    "orjson>=', 1)
    pyproject.write_text(text)
    drifted = uv("lock", "--locked")
    assert drifted.returncode != 0
    assert "needs to be updated" in drifted.stderr
