"""What a team expects in a new repository: Dependabot's configuration valid against
its schema, and every rendered file keeping the .editorconfig it ships. (The
pre-commit hooks run in tests/test_rendered_project.py, on an installed project.)"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import editorconfig
import yaml

from .support.commands import run
from .support.paths import BIN
from .support.template_files import project_files

BINARY_SUFFIXES = {".png", ".ico", ".svg"}


def test_dependabot_configuration_is_valid_and_covers_every_ecosystem(
    shipped: tuple[dict[str, str], Path],
) -> None:
    _, project = shipped
    config = project / ".github" / "dependabot.yml"
    result = run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(config)]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    updates = yaml.safe_load(config.read_text())["updates"]
    ecosystems = {(update["package-ecosystem"], update["directory"]) for update in updates}
    assert ecosystems == {
        ("uv", "/backend"),
        ("npm", "/"),
        ("github-actions", "/"),
        ("docker", "/backend"),
        ("docker-compose", "/"),
    }
    for ecosystem, directory in ecosystems - {("github-actions", "/")}:
        manifest = {"uv": "pyproject.toml", "npm": "package.json", "docker": "Dockerfile"}.get(
            ecosystem
        )
        assert (project / directory.lstrip("/") / (manifest or "docker-compose.yml")).is_file()


def editorconfig_problems(path: Path, text: str) -> list[str]:
    """Where `text` breaks the .editorconfig properties that apply to `path`."""
    properties = editorconfig.get_properties(str(path))
    problems = []
    if properties.get("insert_final_newline") == "true" and text and not text.endswith("\n"):
        problems.append("no final newline")
    if properties.get("end_of_line") == "lf" and "\r" in text:
        problems.append("CR line ends")
    for number, line in enumerate(text.splitlines(), 1):
        if properties.get("trim_trailing_whitespace") == "true" and line != line.rstrip():
            problems.append(f"line {number}: trailing whitespace")
        if properties.get("indent_style") == "space" and line.startswith("\t"):
            problems.append(f"line {number}: indented with a tab")
    return problems


def test_every_file_keeps_the_editorconfig(shipped: tuple[dict[str, str], Path]) -> None:
    _, project = shipped
    assert (project / ".editorconfig").is_file()
    assert editorconfig.get_properties(str(project / "Makefile"))["indent_style"] == "tab"
    problems = {}
    for path in project_files(project):
        if not path.is_file() or path.suffix in BINARY_SUFFIXES:
            continue
        if found := editorconfig_problems(path, path.read_text(encoding="utf-8")):
            problems[str(path.relative_to(project))] = found[:3]
    assert problems == {}


def test_make_lint_without_npm_says_what_to_install(bake: Any, tmp_path: Path) -> None:
    """No Node.js on the machine yet: make lint stops with one line naming what it needs."""
    project = bake({})
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("bash", "make"):
        (tools / tool).symlink_to(shutil.which(tool) or tool)
    result = run(["make", "lint-openapi"], project, os.environ | {"PATH": str(tools)})
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == (
        "make lint-openapi (part of make lint): npm not found; install Node.js >= 20.19 with npm"
    ), result.stderr
