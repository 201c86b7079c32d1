"""Jinja helpers for this template, and the capacity rule they share with the hooks.

cookiecutter puts the template directory on sys.path while it renders, so
`cookiecutter.json` and the files can use these filters; hooks/pre_gen_project.py
imports this module for the same rule, so the budget is computed in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2.ext import Extension

CAPACITY_FILE = Path(__file__).with_name("capacity.yaml")


def load_capacity() -> dict[str, Any]:
    with CAPACITY_FILE.open(encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.safe_load(handle)
    return data


@dataclass(frozen=True)
class Budget:
    cloud_target: str
    db_size: str
    instance: str
    max_connections: int
    reserved: int
    headroom: int

    def largest_pool(self, replicas: int, workers: int) -> int:
        """The largest db_pool_max_size that fits: floor(usable / processes)."""
        usable = self.max_connections - self.reserved - self.headroom
        return max(usable // (replicas * workers), 0)


def budget_for(cloud_target: str, db_size: str) -> Budget:
    capacity = load_capacity()
    target = capacity["targets"][cloud_target]
    size = target["sizes"][db_size]
    return Budget(
        cloud_target=cloud_target,
        db_size=db_size,
        instance=size["instance"],
        max_connections=size["max_connections"],
        reserved=target["reserved"],
        headroom=capacity["headroom"],
    )


def suggested_pool_max(answers: dict[str, Any]) -> int:
    """Default pool size: what the budget allows, capped where Little's law says more is waste."""
    try:
        replicas, workers = int(answers["api_replicas"]), int(answers["api_workers"])
        budget = budget_for(answers["cloud_target"], answers["db_size"])
    except (KeyError, ValueError):
        # A bad answer is reported by the pre-generation hook; any default will do until then.
        return 1
    if replicas < 1 or workers < 1:
        return 1
    return max(min(load_capacity()["suggested_pool_max"], budget.largest_pool(replicas, workers)), 1)


def db_budget(answers: dict[str, Any]) -> Budget:
    return budget_for(answers["cloud_target"], answers["db_size"])


class CapacityExtension(Extension):
    """Exposes the capacity table to templates as filters."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        environment.filters["suggested_pool_max"] = suggested_pool_max
        environment.filters["db_budget"] = db_budget
