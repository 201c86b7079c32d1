"""Prometheus metrics (prometheus-client), for every uvicorn worker at once.

`python -m {{ cookiecutter.package_name }}` runs N worker processes behind one port, and a
scrape reaches whichever worker accepts it. So the workers share prometheus-client's
multiprocess mode: each writes its values to files in $PROMETHEUS_MULTIPROC_DIR (set by
__main__ before any worker starts), and /metrics sums the files of all of them. Gauges
count only live workers ("livesum"). Without that variable (the in-process tests) the
metrics live in the process's own registry.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Route templates, not raw paths: bounded label values whatever clients request.
UNMATCHED_ROUTE = "<unmatched>"

REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer a request, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUESTS = Counter(
    "http_requests",
    "Requests answered, by route template and status code.",
    ["method", "route", "status"],
)
REQUESTS_IN_PROGRESS = Gauge(
    "http_requests_in_progress",
    "Requests being answered now.",
    multiprocess_mode="livesum",
)
REQUESTS_SHED = Counter(
    "http_requests_shed",
    "Requests answered 503 + Retry-After because the database could not take them.",
    ["cause"],
)
POOL = {
    name: Gauge(f"db_pool_{name}", help_text, multiprocess_mode="livesum")
    for name, help_text in {
        "size": "Open connections (in_use + idle), summed over workers.",
        "in_use": "Connections checked out by requests.",
        "idle": "Open connections waiting in the pool.",
        "waiting": "Requests waiting for a connection.",
        "max_size": "The pools' configured maximum.",
    }.items()
}


# Every worker reads the same server-wide figures: one value, not a sum of workers.
BUDGET = {
    "configured": Gauge(
        "db_connection_budget_configured",
        "Connections the pools may open: replicas x workers x pool max_size.",
        multiprocess_mode="livemax",
    ),
    "allowed": Gauge(
        "db_connection_budget_allowed",
        "max_connections less reserved slots and other applications' connections.",
        multiprocess_mode="livemax",
    ),
    "observed": Gauge(
        "db_connection_budget_observed",
        "Open connections of this application (application_name, database), all replicas'.",
        multiprocess_mode="livemax",
    ),
    "headroom": Gauge(
        "db_connection_budget_headroom",
        "allowed - configured: below 0, the pools at full size would be refused.",
        multiprocess_mode="livemin",
    ),
}


def record_budget(figures: Mapping[str, int]) -> None:
    for name, gauge in BUDGET.items():
        gauge.set(figures[name])


def record_pool(stats: Mapping[str, int]) -> None:
    for name, gauge in POOL.items():
        gauge.set(stats[name])


async def sample_pool(stats: Callable[[], Mapping[str, int]], interval_seconds: float) -> None:
    """Record this worker's pool every interval, until cancelled (at shutdown)."""
    while True:
        record_pool(stats())
        await asyncio.sleep(interval_seconds)


def exposition() -> tuple[bytes, str]:
    """The current values of every worker, and their content type."""
    if MULTIPROCESS_DIR_ENV in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_stopped() -> None:
    """Drop this worker's gauges, so livesum counts only the workers still running."""
    if MULTIPROCESS_DIR_ENV in os.environ:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
