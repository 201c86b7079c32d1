"""Rendering the template as a user does: the cookiecutter CLI in a process of its
own, so the hooks run exactly as they run for a user. `render` is the one way a test
(or bench/) gets a rendered variant; `attempt` keeps a render that may fail."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .commands import make, run, with_tools
from .databases import SERVER
from .paths import TEMPLATE

# A render with its checks on installs, migrates and smoke-tests: minutes on a busy machine.
RENDER_SECONDS = 1200


def cookiecutter(
    output: Path, *arguments: str, env: Mapping[str, str] | None = None, template: Path = TEMPLATE
) -> subprocess.CompletedProcess[str]:
    """`cookiecutter <template> --output-dir <output> <arguments>`, whatever it answers."""
    output.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "cookiecutter", str(template), "--output-dir", str(output)]
    return run([*command, *arguments], env=env, timeout=RENDER_SECONDS)


def answer_arguments(answers: Mapping[str, str] | Iterable[str]) -> list[str]:
    """`key=value` arguments, from a mapping or as they are."""
    if isinstance(answers, Mapping):
        return [f"{key}={value}" for key, value in answers.items()]
    return list(answers)


def attempt(
    output: Path,
    *answers: str,
    checks: bool = False,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """A render with `--no-input` and these answers (the post-generation checks on
    or off), which may fail: its exit status and output."""
    run_checks = f"run_checks={'yes' if checks else 'no'}"
    return cookiecutter(output, "--no-input", run_checks, *answers, env=env)


def checked_environment(database: str) -> dict[str, str]:
    """For a render with its post-generation checks on: uv from this environment, the
    checks not skipped, and a database of the test's own on the shared server."""
    outside = {k: v for k, v in os.environ.items() if k != "HIGHCONCURRENCY_SKIP_CHECKS"}
    return with_tools(outside) | {"DATABASE_URL": f"{SERVER}/{database}"}


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The pre-generation hook's problems, one `error: ` line each."""
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def render(
    output: Path,
    answers: Mapping[str, str] | Iterable[str] = (),
    *,
    checks: bool = False,
    env: Mapping[str, str] | None = None,
) -> Path:
    """The variant rendered into `output` with `--no-input` (post-generation checks off
    unless `checks`); it must succeed. The project's directory."""
    before = set(output.iterdir()) if output.is_dir() else set()
    result = attempt(output, *answer_arguments(answers), checks=checks, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    (project,) = set(output.iterdir()) - before
    return project


def baked(cookies: Any, answers: Mapping[str, str]) -> tuple[dict[str, str], Path]:
    """The variant rendered in-process by pytest-cookies' `cookies`/`cookies_session`
    fixture (no process start: the fast way for the many renders that only read or
    install the files), post-generation checks off; its full answers and directory."""
    result = cookies.bake(extra_context={**answers, "run_checks": "no"})
    assert result.exit_code == 0, result.exception
    return dict(result.context), Path(result.project_path)


def package_of(project: Path) -> str:
    """The rendered service's package (the one directory under backend/src)."""
    return next((project / "backend" / "src").iterdir()).name


def installed_project(output: Path, *answers: str) -> Path:
    """The template rendered into `output` (checks off) and `make install`ed."""
    project = render(output, answers)
    make(project, "install")
    return project
