"""The template's own data files (cookiecutter.json, manifest.yaml) and the files of a
rendered project, read as the tests compare them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .paths import TEMPLATE

# Not Jinja: GitHub Actions expressions `${{ … }}` in the rendered workflows, and
# CloudFormation's dynamic references `{{resolve:secretsmanager:…}}`.
JINJA_LEFTOVER = re.compile(r"(?<!\$)\{\{(?!resolve:)|\{%|\{#")


def cookiecutter_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    return data


def choice_values() -> dict[str, list[str]]:
    """The questions with a list of values (private keys such as `_extensions` are none)."""
    return {
        key: value
        for key, value in cookiecutter_json().items()
        if isinstance(value, list) and not key.startswith("_")
    }


def manifest() -> dict[str, dict[str, list[str]]]:
    data: dict[str, dict[str, list[str]]] = yaml.safe_load((TEMPLATE / "manifest.yaml").read_text())
    return data


def answers_with_defaults(extra: dict[str, str]) -> dict[str, str]:
    """The value each choice takes: the first listed unless `extra` overrides it."""
    return {key: extra.get(key, values[0]) for key, values in choice_values().items()}


def project_files(project: Path) -> Iterator[Path]:
    """Every path of a rendered project but its caches and virtual environment."""
    for path in sorted(project.rglob("*")):
        if any(
            part in {".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
            for part in path.relative_to(project).parts
        ):
            continue
        yield path


def tree_of(root: Path) -> dict[str, bytes]:
    """Every file below `root` by its relative path, with its bytes."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def shell_block(markdown: str, heading: str) -> str:
    """The first ```sh block after `heading`, exactly as the document shows it."""
    after = markdown[markdown.index(heading) :]
    return after.split("```sh\n", 1)[1].split("```", 1)[0]
