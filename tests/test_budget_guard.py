"""The live connection-budget guard in the rendered service as deployed (`python -m
<package>`, two uvicorn workers sharing prometheus-client's multiprocess files): told
that a fleet far too big shares the database, each worker warns once, the metrics listener shows
the budget's gauges as one value each (not a sum over workers), and the service stays
ready."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .support.databases import migrated_database
from .support.json_logs import json_lines
from .support.metrics import metric_samples
from .support.service import running

pytestmark = pytest.mark.xdist_group("budget-guard")

WORKERS = 2
POOL_MAX = 3
REPLICAS = 500


@pytest.fixture
def database(installed_default: Path) -> Iterator[str]:
    with migrated_database(installed_default, "budget_guard") as url:
        yield url


def test_an_oversized_fleet_is_reported_not_fatal(installed_default: Path, database: str) -> None:
    environment = {
        "APP_DATABASE__URL": database,
        "APP_SERVER__WORKERS": str(WORKERS),
        "APP_DATABASE__POOL__MAX_SIZE": str(POOL_MAX),
        "APP_DATABASE__BUDGET__REPLICAS": str(REPLICAS),
        "APP_DATABASE__BUDGET__CHECK_INTERVAL_SECONDS": "0.2",
    }
    with running(installed_default, environment) as service:
        time.sleep(1.5)  # several checks in each worker
        ready = httpx.get(f"{service.base_url}/health/ready", timeout=10)
        exposition = httpx.get(service.metrics_url, timeout=10).text
        warnings = [
            entry
            for entry in json_lines(service.log())
            if entry["msg"].startswith("connection budget exceeded")
        ]
    gauges = {
        name: value
        for (name, _), value in metric_samples(exposition).items()
        if name.startswith("db_connection_budget_")
    }
    print(f"budget gauges: {gauges}; warnings: {len(warnings)}")
    assert ready.status_code == 200
    assert len(warnings) == WORKERS, warnings  # once per worker, however many checks
    assert len({entry["pid"] for entry in warnings}) == WORKERS
    assert gauges["db_connection_budget_configured"] == REPLICAS * WORKERS * POOL_MAX
    assert 1 <= gauges["db_connection_budget_observed"] <= WORKERS * POOL_MAX
    # Each worker reads other applications' connections at its own moment: the exported
    # allowed is the workers' largest, the headroom their smallest.
    assert gauges["db_connection_budget_headroom"] <= (
        gauges["db_connection_budget_allowed"] - gauges["db_connection_budget_configured"]
    )
    assert gauges["db_connection_budget_headroom"] < 0
