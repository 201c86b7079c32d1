"""The worker's sampler (metrics.sample_worker) outlives a sample that fails."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from {{ cookiecutter.package_name }}.metrics import REQUEST_TALLY, sample_worker

from ..support.scopes import routed_scope

pytestmark = pytest.mark.anyio

STATS = {"size": 1, "in_use": 0, "idle": 1, "waiting": 0, "max_size": 1}


class FailingOnce:
    """The pool's figures, but the first call raises, as a pool being replaced might."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> Mapping[str, int]:
        self.calls += 1
        if self.calls == 1:
            message = "the pool's figures are unavailable"
            raise RuntimeError(message)
        return STATS


async def test_a_failed_sample_is_logged_and_the_next_one_records_the_requests() -> None:
    route = "/sampler/{after-a-failure}"
    labels = {"method": "GET", "route": route, "status": "200"}
    stats = FailingOnce()
    with capture_logs() as logs:
        sampler = asyncio.create_task(sample_worker(stats, interval_seconds=0.05))
        await asyncio.sleep(0.01)  # its first sample has failed
        REQUEST_TALLY.started()
        REQUEST_TALLY.finished(routed_scope(route), 200, 0.01)
        # Written at a later wake-up: within a few intervals, or seconds on a busy machine.
        for _ in range(100):
            if REGISTRY.get_sample_value("http_requests_total", labels) is not None:
                break
            await asyncio.sleep(0.05)
        sampler.cancel()

    assert stats.calls >= 2
    assert REGISTRY.get_sample_value("http_requests_total", labels) == 1
    assert REGISTRY.get_sample_value("db_pool_max_size") == 1
    failures = [entry for entry in logs if entry["log_level"] == "error"]
    assert [entry["event"] for entry in failures] == [
        "metrics sample failed; sampling again next interval"
    ]
