"""Shared helpers: render the template with pytest-cookies and read what it owns."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

TEMPLATE = Path(__file__).resolve().parents[1]
# CloudFormation's dynamic references ({{resolve:secretsmanager:...}}) are not Jinja.
JINJA_LEFTOVER = re.compile(r"\{\{(?!resolve:)|\{%|\{#")


def cookiecutter_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    return data


def choice_values() -> dict[str, list[str]]:
    return {key: value for key, value in cookiecutter_json().items() if isinstance(value, list)}


def manifest() -> dict[str, dict[str, list[str]]]:
    data: dict[str, dict[str, list[str]]] = yaml.safe_load((TEMPLATE / "manifest.yaml").read_text())
    return data


def answers_with_defaults(extra: dict[str, str]) -> dict[str, str]:
    """The value each choice takes: the first listed unless `extra` overrides it."""
    return {key: extra.get(key, values[0]) for key, values in choice_values().items()}


def project_files(project: Path) -> Iterator[Path]:
    for path in sorted(project.rglob("*")):
        if any(
            part in {".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
            for part in path.relative_to(project).parts
        ):
            continue
        yield path


@pytest.fixture
def bake(cookies: Any) -> Any:
    """Render with the given answers and the post-generation checks off (fast)."""

    def _bake(extra: dict[str, str], *, checks: bool = False) -> Any:
        context = {**extra, "run_checks": "yes" if checks else "no"}
        return cookies.bake(extra_context=context)

    return _bake
