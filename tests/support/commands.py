"""Running a command and keeping what it printed, and a project's Makefile targets."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from .paths import BIN


def run(
    command: list[str],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """The command's exit status and output (text); never raises on a failure."""
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout
    )


def with_tools(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (this process's by default) with this environment's tools (uv, k6…) first on PATH."""
    base = dict(os.environ if env is None else env)
    return base | {"PATH": f"{BIN}{os.pathsep}{base['PATH']}"}


def make(project: Path, target: str, **environment: str) -> None:
    """A target of the project's Makefile, with uv from this environment; it must pass."""
    result = run(["make", target], project, with_tools() | environment, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
