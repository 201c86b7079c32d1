"""The versions a rendered project names agree with one source each: Python with the
python_version answer, PostgreSQL's major with the one docker-compose.yml runs
locally. A file that stops naming its version fails too, so no check passes empty."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .support.template_files import choice_values

# Where each rendered file names a Python version.
PYTHON = {
    "backend/Dockerfile": r"^ARG PYTHON_VERSION=(\d+\.\d+)$",
    ".github/workflows/ci.yml": r'^  PYTHON_VERSION: "(\d+\.\d+)"$',
    "README.md": r"`python:(\d+\.\d+)-slim[-\w]*`",
}
# The base image's tag after the version, as the Dockerfile and the README name it.
TAG_SUFFIX = {
    "backend/Dockerfile": r"^FROM python:\$\{PYTHON_VERSION\}(-[-\w]+) AS runtime$",
    "README.md": r"`python:\d+\.\d+(-[-\w]+)`",
}
# Where each file names PostgreSQL's version (the major is compared); the first is the source.
POSTGRES = {
    "docker-compose.yml": r"image: postgres:(\d+)[.\d]*-",
    ".github/workflows/ci.yml": r"image: postgres:(\d+)[.\d]*-",
    "render.yaml": r'postgresMajorVersion: "(\d+)"',
    "deploy/aws/cloudformation.yaml": r'EngineVersion: "(\d+)[.\d]*"',
    "deploy/azure/main.bicep": r"^    version: '(\d+)'$",
}
TARGETS = choice_values()["cloud_target"]
PYTHONS = choice_values()["python_version"]


def found(project: Path, patterns: dict[str, str]) -> dict[str, set[str]]:
    """The versions each file of `patterns` names, for the files this variant has."""
    versions = {}
    for name, pattern in patterns.items():
        if (project / name).is_file():
            text = (project / name).read_text()
            versions[name] = set(re.findall(pattern, text, re.MULTILINE))
    return versions


@pytest.mark.parametrize("cloud_target", TARGETS)
def test_python_and_postgresql_versions_agree(bake: Any, cloud_target: str) -> None:
    python = PYTHONS[TARGETS.index(cloud_target) % len(PYTHONS)]
    project = bake({"cloud_target": cloud_target, "python_version": python})

    assert found(project, PYTHON) == {name: {python} for name in PYTHON}
    suffixes = found(project, TAG_SUFFIX)
    assert suffixes["README.md"] == suffixes["backend/Dockerfile"], suffixes
    postgres = found(project, POSTGRES)
    assert all(postgres.values()), f"a file no longer names its version: {postgres}"
    source = postgres["docker-compose.yml"]
    assert len(source) == 1, source
    assert {name: majors for name, majors in postgres.items() if majors != source} == {}


@pytest.mark.parametrize("cloud_target", TARGETS)
def test_the_deployment_guide_has_one_section_per_subject(bake: Any, cloud_target: str) -> None:
    """ "## The image" and "## Image" once said the same thing twice."""
    text = (bake({"cloud_target": cloud_target}) / "DEPLOYMENT.md").read_text()
    subjects = [
        re.sub(r"^the ", "", heading.lower()) for heading in re.findall(r"^## (.+)$", text, re.M)
    ]
    assert len(subjects) == len(set(subjects)), subjects
