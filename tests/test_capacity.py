"""capacity.yaml is the one source of connection limits: the README's table says
the same, the suggested default pool always fits the budget, each preset fits its
budget, renders with --no-input and replays, and the capacity rule holds at every
target's largest size."""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import pytest
import yaml

from template_extensions import budget_for, load_capacity, suggested_pool_max

from .support.paths import TEMPLATE
from .support.rendering import attempt, cookiecutter, error_lines
from .support.template_files import tree_of

README = TEMPLATE / "README.md"
SIZES = ("small", "medium", "large", "xlarge")
PRESETS = sorted((TEMPLATE / "presets").glob("*.yaml"))
MAX_REPLICAS = 1000  # the pre-generation hook's range for api_replicas


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


# --- presets and replay -----------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS, ids=lambda path: path.stem)
def test_preset_fits_its_budget_renders_and_replays(preset: Path, tmp_path: Path) -> None:
    answers = yaml.safe_load(preset.read_text())["default_context"]
    budget = budget_for(answers["cloud_target"], answers["db_size"])
    pool = int(answers["db_pool_max_size"])
    assert pool <= budget.largest_pool(int(answers["api_replicas"]), int(answers["api_workers"]))
    row = (
        f"| `{preset.stem}` | {answers['cloud_target']} | {answers['db_size']} | "
        f"{answers['api_replicas']} × {answers['api_workers']} × {pool} |"
    )
    assert row in README.read_text(), f"README lacks {row}"

    # cookiecutter keeps its replay file under $HOME: a home of our own keeps runs apart.
    env = os.environ | {"HOME": str(tmp_path / "home")}
    first = cookiecutter(
        tmp_path / "first", "--no-input", "--config-file", str(preset), "run_checks=no", env=env
    )
    assert first.returncode == 0, first.stderr
    (project,) = (tmp_path / "first").iterdir()
    rendered_base = (project / "backend/configuration/base.yaml").read_text()
    assert f"max_size: {pool}\n" in rendered_base
    assert f"workers: {answers['api_workers']}\n" in rendered_base

    again = cookiecutter(tmp_path / "again", "--replay", env=env)
    assert again.returncode == 0, again.stderr
    assert tree_of(tmp_path / "again") == tree_of(tmp_path / "first")


# --- the capacity rule at each target's largest size -------------------------------


@pytest.mark.parametrize("cloud_target", sorted(load_capacity()["targets"]))
def test_capacity_rule_at_the_largest_size_accepts_the_most_replicas_that_fit(
    tmp_path: Path, cloud_target: str
) -> None:
    """test_pre_gen.py moves the pool at db_size=small; this moves the replicas at
    xlarge, where the fix the error suggests is fewer replicas, not a smaller pool."""
    budget = budget_for(cloud_target, "xlarge")
    usable = budget.max_connections - budget.reserved - budget.headroom
    workers = -(-usable // MAX_REPLICAS)  # enough workers that the answer stays in range
    most = budget.most_replicas(workers=workers, pool=1)
    common = [
        f"cloud_target={cloud_target}",
        "db_size=xlarge",
        f"api_workers={workers}",
        "db_pool_max_size=1",
        "db_pool_min_size=1",
        "include_frontend=yes",
        "background_worker=no",  # its connections: test_worker_deploy.py
    ]
    fits = attempt(tmp_path / "fits", *common, f"api_replicas={most}")
    assert fits.returncode == 0, fits.stderr

    over = attempt(tmp_path / "over", *common, f"api_replicas={most + 1}")
    assert over.returncode != 0
    (line,) = error_lines(over)
    surge = budget.surge(most + 1)
    assert f"({most + 1} replicas + {surge} rollout surge) x {workers} workers x 1 " in line
    assert f"max_connections={budget.max_connections}" in line
    # The number that fits, and no larger db_size: xlarge is the largest.
    assert line.endswith(f"accepted: api_replicas at most {most} with db_pool_max_size=1")
    assert list((tmp_path / "over").iterdir()) == []
