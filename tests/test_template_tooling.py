"""The template's own tooling meets the bar it sets for a rendered project: its
Python (tests, bench, template_extensions.py) is ruff- and mypy --strict-clean, its
workflows pass actionlint and yamllint, its scripts shellcheck, and the workflow's
matrix lists every supported variant."""

from __future__ import annotations

import json
import os
import sys

import yaml

from .support.commands import run, with_tools
from .support.paths import BIN, TEMPLATE
from .variants import SUPPORTED


def test_template_workflows_pass_actionlint_and_yamllint() -> None:
    workflows = sorted(str(path) for path in (TEMPLATE / ".github" / "workflows").glob("*.yml"))
    assert workflows
    lint = run(
        [str(BIN / "actionlint"), "-shellcheck", str(BIN / "shellcheck"), *workflows], TEMPLATE
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    yamllint = run([str(BIN / "yamllint"), "--strict", "-c", ".yamllint.yml", "."], TEMPLATE)
    assert yamllint.returncode == 0, yamllint.stdout + yamllint.stderr


def test_template_scripts_pass_shellcheck() -> None:
    scripts = sorted(str(path) for path in (TEMPLATE / "scripts").glob("*.sh"))
    assert scripts
    result = run([str(BIN / "shellcheck"), *scripts], TEMPLATE)
    assert result.returncode == 0, result.stdout


def test_template_matrix_lists_every_supported_variant() -> None:
    """The workflow's own plan step, run here, yields one matrix entry per variant."""
    workflow = yaml.safe_load((TEMPLATE / ".github/workflows/template.yml").read_text())
    (step,) = [step for step in workflow["jobs"]["plan"]["steps"] if step.get("id") == "variants"]
    output = TEMPLATE / "build" / f"github-output-{os.getpid()}"
    output.parent.mkdir(exist_ok=True)
    try:
        result = run(
            ["bash", "-euo", "pipefail", "-c", step["run"]],
            TEMPLATE,
            with_tools() | {"GITHUB_OUTPUT": str(output)},
        )
        assert result.returncode == 0, result.stderr
        name, _, value = output.read_text().strip().partition("=")
    finally:
        output.unlink(missing_ok=True)
    assert name == "variants"
    assert [entry["index"] for entry in json.loads(value)] == list(range(len(SUPPORTED)))


def test_template_tooling_is_lint_format_and_type_clean() -> None:
    """The template's own Python (tests, bench, template_extensions.py) meets the bar it
    sets for the rendered code: ruff, and mypy --strict ([tool.mypy] in pyproject.toml)."""
    paths = ["tests", "bench", "template_extensions.py", "project_directory.py"]
    ruff = str(BIN / "ruff")
    check = run([ruff, "check", *paths], TEMPLATE)
    assert check.returncode == 0, check.stdout
    formatted = run([ruff, "format", "--check", *paths], TEMPLATE)
    assert formatted.returncode == 0, formatted.stdout
    typed = run([sys.executable, "-m", "mypy"], TEMPLATE)
    assert typed.returncode == 0, typed.stdout
