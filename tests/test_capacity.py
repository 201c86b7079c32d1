"""capacity.yaml is the one source of connection limits: the README's table says
the same, and the suggested default pool always fits the budget."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

from template_extensions import budget_for, load_capacity, suggested_pool_max

README = Path(__file__).resolve().parents[1] / "README.md"
SIZES = ("small", "medium", "large", "xlarge")


def test_readme_table_matches_the_data_file() -> None:
    rows = re.findall(
        r"^\| (\w+) \| (\w+) \| ([^|]+?) \| (\d+) \| (\d+) \|$",
        README.read_text(),
        flags=re.MULTILINE,
    )
    table = {
        (target, size): (instance, int(limit), int(reserved))
        for target, size, instance, limit, reserved in rows
    }
    for target, spec in load_capacity()["targets"].items():
        for size, entry in spec["sizes"].items():
            assert table[(target, size)] == (
                entry["instance"],
                entry["max_connections"],
                spec["reserved"],
            ), f"README row for {target} {size}"


def test_suggested_default_always_fits() -> None:
    for target, size, replicas, workers in itertools.product(
        load_capacity()["targets"], SIZES, (1, 2, 8), (1, 4)
    ):
        budget = budget_for(target, size)
        answers = {
            "cloud_target": target,
            "db_size": size,
            "api_replicas": str(replicas),
            "api_workers": str(workers),
        }
        pool = suggested_pool_max(answers)
        peak = budget.peak_replicas(replicas)  # the autoscaler's maximum + rollout surge
        used = peak * workers * pool + budget.reserved + budget.headroom
        assert 1 <= pool <= load_capacity()["suggested_pool_max"]
        assert used <= budget.max_connections, (target, size, replicas, workers)


def test_template_tooling_is_lint_format_and_type_clean() -> None:
    """The template's own Python (tests, bench, template_extensions.py) meets the bar it
    sets for the rendered code: ruff, and mypy --strict ([tool.mypy] in pyproject.toml)."""
    root = README.parent
    paths = ["tests", "bench", "template_extensions.py", "project_directory.py"]
    ruff = Path(sys.executable).parent / "ruff"
    check = subprocess.run(
        [ruff, "check", *paths], cwd=root, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout
    formatted = subprocess.run(
        [ruff, "format", "--check", *paths], cwd=root, capture_output=True, text=True, check=False
    )
    assert formatted.returncode == 0, formatted.stdout
    typed = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=root, capture_output=True, text=True, check=False
    )
    assert typed.returncode == 0, typed.stdout
