"""Operators read each process's event-loop lag where they read everything else: the
metrics listener of the API{% if cookiecutter.background_worker == "yes" %} and of the background worker{% endif %}."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable

from ..support.http_server import free_port
from ..support.service import running_service
{%- if cookiecutter.background_worker == "yes" %}
from ..support.worker import running_worker
{%- endif %}

# Fast enough for a test to see several samples; production samples once a second.
SAMPLE_SECONDS = "0.05"
WAIT_SECONDS = 20.0
LAG_COUNT = re.compile(r"^event_loop_lag_seconds_count (\S+)$", re.MULTILINE)


def lag_samples(scrape: Callable[[], str]) -> float:
    """The lag histogram's count, once it has at least two samples (or what it has
    when the wait is over)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = LAG_COUNT.search(scrape())
        count = float(found.group(1)) if found else 0.0
        if count >= 2 or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


def test_the_api_exports_its_event_loop_lag(database_url: str) -> None:
    metrics_port = free_port()
    environment = {
        "APP_ENVIRONMENT": "test",
        "APP_DATABASE__URL": database_url,
        "APP_METRICS__PORT": str(metrics_port),
        "APP_METRICS__POOL_SAMPLE_SECONDS": SAMPLE_SECONDS,
    }

    def scrape() -> str:
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())

    with running_service(environment):
        assert lag_samples(scrape) >= 2
{%- if cookiecutter.background_worker == "yes" %}


def test_the_worker_exports_its_event_loop_lag(database_url: str) -> None:
    with running_worker(database_url, APP_METRICS__POOL_SAMPLE_SECONDS=SAMPLE_SECONDS) as worker:
        assert lag_samples(worker.metrics) >= 2
{%- endif %}
