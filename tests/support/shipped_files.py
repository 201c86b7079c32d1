"""A rendered project's container files read as their tools read them: the compose
file as YAML, the Dockerfile by dockerfile-parse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser


def compose(project: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((project / "docker-compose.yml").read_text())
    return data


def dockerfile(project: Path) -> DockerfileParser:
    return DockerfileParser(path=str(project / "backend" / "Dockerfile"))


def instructions(parser: DockerfileParser, name: str) -> list[str]:
    """The values of every instruction called `name` (CMD, COPY…), in order."""
    return [entry["value"] for entry in parser.structure if entry["instruction"] == name]


def final_stage(parser: DockerfileParser) -> list[dict[str, Any]]:
    """The instructions of the last stage: what the image runs with."""
    structure: list[dict[str, Any]] = parser.structure
    starts = [i for i, entry in enumerate(structure) if entry["instruction"] == "FROM"]
    return structure[starts[-1] :]
