"""k6 as the tests run it: the rendered k6/load_test.js's scenarios, its summary,
and the latency bounds the script holds each scenario to."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from . import identity_provider
from .commands import run
from .paths import BIN

SCRIPT = Path("k6") / "load_test.js"
# k6/load_test.js: const LATENCY_MS = { smoke: [p95, p99], load: [p95, p99], ... }
LATENCY_MS = re.compile(r"const LATENCY_MS = \{([^}]*)\}")
SCENARIO_BOUNDS = re.compile(r"(\w+): \[(\d+), (\d+)\]")
ENVIRONMENT = {"K6_NO_USAGE_REPORT": "true"}


def k6_smoke_command(k6: Path, base_url: str, duration: str, *options: str) -> list[str]:
    """The rendered k6/load_test.js's smoke scenario against `base_url`."""
    return [
        str(k6),
        "run",
        "--quiet",
        "-e",
        "SCENARIO=smoke",
        "-e",
        f"DURATION={duration}",
        "-e",
        f"BASE_URL={base_url}",
        *options,
        str(SCRIPT),
    ]


def latency_bounds_ms(project: Path, scenario: str) -> tuple[int, int]:
    """The scenario's (p95, p99) bounds in the project's k6 script, in ms."""
    table = LATENCY_MS.search((project / SCRIPT).read_text())
    assert table, f"{SCRIPT} has no LATENCY_MS"
    bounds = {name: (int(p95), int(p99)) for name, p95, p99 in SCENARIO_BOUNDS.findall(table[1])}
    assert scenario in bounds, f"{SCRIPT} has no latency bounds for {scenario}"
    return bounds[scenario]


def k6_inspect(project: Path, scenario: str) -> subprocess.CompletedProcess[str]:
    """`k6 inspect` of the script with SCENARIO set: its options, as JSON."""
    command = [str(BIN / "k6"), "inspect", "-e", f"SCENARIO={scenario}", str(SCRIPT)]
    return run(command, project, os.environ | ENVIRONMENT, timeout=300)


def make_load(project: Path, base_url: str, *variables: str) -> subprocess.CompletedProcess[str]:
    """The project's own `make load` against `base_url`, with a token the
    production-configured service trusts (not the development one make mints)."""
    token = identity_provider.project_token(project)
    credentials = [f"TOKEN={token}"] if token else []
    return run(
        ["make", "load", f"BASE_URL={base_url}", *credentials, *variables], project, timeout=300
    )


def k6_summary(project: Path, scenario: str) -> dict[str, Any]:
    """The JSON summary `make load` wrote for the scenario."""
    data: dict[str, Any] = json.loads(
        (project / "k6" / "results" / f"{scenario}-summary.json").read_text()
    )
    return data
