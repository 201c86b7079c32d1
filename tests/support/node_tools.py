"""The Node tools the suite installs in tests/node (Vercel's routing library, axe-core),
and vercel.json compiled by Vercel's own @vercel/routing-utils."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .commands import run
from .paths import TEMPLATE

NODE_TOOLS = TEMPLATE / "tests" / "node"
INSTALL_HINT = "scripts/install_test_deps.sh (run by `make test`) installs it"


def check_vercel(path: Path) -> subprocess.CompletedProcess[str]:
    """tests/node/check_vercel.js on a vercel.json: its routes as JSON, or its errors."""
    node = shutil.which("node")
    assert node, f"node not found; {INSTALL_HINT}"
    assert (NODE_TOOLS / "node_modules").is_dir(), f"tests/node has no node_modules; {INSTALL_HINT}"
    return run([node, str(NODE_TOOLS / "check_vercel.js"), str(path)], NODE_TOOLS, timeout=300)


def vercel_routes(project: Path) -> list[dict[str, Any]]:
    """The routes Vercel compiles from the project's frontend/vercel.json."""
    result = check_vercel(project / "frontend" / "vercel.json")
    assert result.returncode == 0, result.stdout + result.stderr
    routes: list[dict[str, Any]] = json.loads(result.stdout)["routes"]
    return routes


def substitute(template: str, match: re.Match[str]) -> str:
    """A route's `$1`… filled in with the groups its `src` matched."""
    return re.sub(r"\$(\d+)", lambda group: match.group(int(group[1])) or "", template)


def rewrite_of(routes: list[dict[str, Any]], path: str) -> str | None:
    """Where the first route with a destination that matches `path` sends it."""
    for route in routes:
        if "dest" in route and (match := re.search(route["src"], path)):
            return substitute(route["dest"], match)
    return None
