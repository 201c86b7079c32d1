"""Each rule of hooks/pre_gen_project.py: generation fails with one clear line per
problem (answer, what is wrong, what is accepted) and leaves nothing on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from template_extensions import budget_for

from .support.rendering import attempt, error_lines


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["project_slug=My Project"], "project_slug='My Project': not a valid slug; accepted:"),
        (["project_slug=-api"], "project_slug='-api': not a valid slug"),
        (["package_name=class"], "package_name='class': a Python keyword; accepted:"),
        (["package_name=logging"], "package_name='logging': shadows the module 'logging'"),
        (["package_name=json"], "package_name='json': shadows the module 'json'"),
        (["package_name=test"], "package_name='test': shadows the module 'test'"),
        (["package_name=fastapi"], "package_name='fastapi': shadows the module 'fastapi'"),
        (["package_name=9lives"], "package_name='9lives': not a valid Python package name"),
        (["api_workers=two"], "api_workers='two': not an integer; accepted: a whole number 1..64"),
        (["api_replicas=0"], "api_replicas='0': out of range; accepted: a whole number 1..1000"),
        (["db_pool_max_size=-3"], "db_pool_max_size='-3': out of range"),
        (["db_pool_min_size=1.5"], "db_pool_min_size='1.5': not an integer"),
        (
            ["db_pool_min_size=9", "db_pool_max_size=4"],
            "db_pool_min_size=9: above db_pool_max_size=4; accepted: a min_size from 1 to 4",
        ),
        (
            ["db_pool_acquire_timeout_seconds=0"],
            "db_pool_acquire_timeout_seconds='0': out of range",
        ),
        (["db_pool_max_lifetime_seconds=0"], "db_pool_max_lifetime_seconds='0': out of range"),
        (["author_email=nobody"], "author_email='nobody': not an email address"),
        (['project_name=Evil "quote"'], "project_name='Evil \"quote\"': not plain text"),
        (["description=$(rm -rf /)"], "description='$(rm -rf /)': not plain text"),
        (
            ["cloud_target=vercel", "include_frontend=no"],
            "cloud_target='vercel': Vercel serves the frontend, which include_frontend='no'",
        ),
    ],
)
def test_bad_answer_is_rejected_with_its_reason(
    tmp_path: Path, answers: list[str], expected: str
) -> None:
    result = attempt(tmp_path / "out", *answers)
    assert result.returncode != 0
    lines = error_lines(result)
    assert any(line.startswith(f"error: {expected}") for line in lines), result.stderr
    assert all("; accepted: " in line for line in lines), lines
    assert list((tmp_path / "out").iterdir()) == []


def test_every_problem_gets_its_own_line(tmp_path: Path) -> None:
    result = attempt(tmp_path / "out", "api_workers=x", "api_replicas=y", "author_email=z")
    assert result.returncode != 0
    assert [line.split("=")[0] for line in error_lines(result)] == [
        "error: author_email",
        "error: api_workers",
        "error: api_replicas",
    ]
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("cloud_target", ["none", "aws", "azure", "render", "vercel", "kubernetes"])
def test_capacity_rule_accepts_the_largest_pool_and_rejects_one_more(
    tmp_path: Path, cloud_target: str
) -> None:
    budget = budget_for(cloud_target, "small")
    largest = budget.largest_pool(replicas=3, workers=4)
    common = [
        f"cloud_target={cloud_target}",
        "db_size=small",
        "api_replicas=3",
        "api_workers=4",
        "db_pool_min_size=1",
        "background_worker=no",  # the worker's share: tests/test_worker_deploy.py
    ]
    fits = attempt(tmp_path / "fits" / "out", *common, f"db_pool_max_size={largest}")
    assert fits.returncode == 0, fits.stderr

    too_many = attempt(tmp_path / "over" / "out", *common, f"db_pool_max_size={largest + 1}")
    assert too_many.returncode != 0
    (line,) = error_lines(too_many)
    assert f"max_connections={budget.max_connections}" in line
    assert f"accepted: db_pool_max_size at most {largest}" in line
    assert list((tmp_path / "over" / "out").iterdir()) == []


SURGING = [
    target
    for target in ("none", "aws", "azure", "render", "vercel", "kubernetes")
    if budget_for(target, "small").surge(4)
]


@pytest.mark.parametrize("cloud_target", SURGING)
def test_capacity_rule_counts_the_rollout_surge(tmp_path: Path, cloud_target: str) -> None:
    """A pool that fits 4 replicas at rest but not with a rollout's extra replicas
    (Render: 4 x 2 x 10 + 15 = 95 of 100 at rest, 160 + 15 during a deploy)."""
    budget = budget_for(cloud_target, "small")
    at_rest = budget.usable // (4 * 2)
    assert at_rest > budget.largest_pool(replicas=4, workers=2), "this size shows no surge"
    result = attempt(
        tmp_path / "out",
        f"cloud_target={cloud_target}",
        "db_size=small",
        "api_replicas=4",
        "api_workers=2",
        "db_pool_min_size=1",
        f"db_pool_max_size={at_rest}",
        "background_worker=no",
    )
    assert result.returncode != 0
    (line,) = error_lines(result)
    surge = budget.surge(4)
    needed = (4 + surge) * 2 * at_rest + budget.reserved + budget.headroom
    assert line == (
        f"error: db_pool_max_size={at_rest}: (4 replicas + {surge} rollout surge) x 2 workers "
        f"x {at_rest} + {budget.reserved} reserved + {budget.headroom} headroom = {needed} "
        f"connections exceeds max_connections={budget.max_connections} of {cloud_target} small "
        f"({budget.instance}); accepted: db_pool_max_size at most "
        f"{budget.largest_pool(replicas=4, workers=2)}"
    )
    assert list((tmp_path / "out").iterdir()) == []


def test_capacity_rule_names_the_workers_that_fit_when_one_replica_is_too_many(
    tmp_path: Path,
) -> None:
    """64 workers overflow render small even at 1 replica with a pool of 1: the line
    names the most workers that fit, not a vague "fewer"."""
    budget = budget_for("render", "small")
    most_workers = budget.usable // budget.peak_replicas(1)
    assert budget.most_replicas(workers=64, pool=1) == 0, "64 workers fit: pick a smaller size"
    result = attempt(
        tmp_path / "out",
        "cloud_target=render",
        "db_size=small",
        "api_replicas=3",
        "api_workers=64",
        "db_pool_min_size=1",
        "db_pool_max_size=1",
        "background_worker=no",
    )
    assert result.returncode != 0
    (line,) = error_lines(result)
    assert line.endswith(
        f"accepted: api_workers at most {most_workers} with api_replicas=1 and "
        "db_pool_max_size=1, or a larger db_size"
    )
    assert list((tmp_path / "out").iterdir()) == []


def test_an_out_of_range_answer_gets_one_line_not_a_capacity_line_too(tmp_path: Path) -> None:
    result = attempt(
        tmp_path / "out",
        "cloud_target=aws",
        "db_size=small",
        "api_replicas=1001",
        "api_workers=1",
        "db_pool_min_size=1",
        "db_pool_max_size=1",
    )
    assert result.returncode != 0
    assert error_lines(result) == [
        "error: api_replicas='1001': out of range; accepted: a whole number 1..1000"
    ]
