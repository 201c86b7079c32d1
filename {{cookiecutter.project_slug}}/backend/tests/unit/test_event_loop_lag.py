"""The worker sampler's event-loop lag: a loop held by blocking work shows as lag."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY

from {{ cookiecutter.package_name }}.metrics import sample_worker

pytestmark = pytest.mark.anyio

STATS = {"size": 1, "in_use": 0, "idle": 1, "waiting": 0, "max_size": 1}


def lag_sum_and_count() -> tuple[float, float]:
    total = REGISTRY.get_sample_value("event_loop_lag_seconds_sum") or 0.0
    count = REGISTRY.get_sample_value("event_loop_lag_seconds_count") or 0.0
    return total, count


async def test_a_blocked_loop_is_recorded_as_lag() -> None:
    before_sum, before_count = lag_sum_and_count()
    sampler = asyncio.create_task(sample_worker(lambda: STATS, interval_seconds=0.05))
    await asyncio.sleep(0.01)  # the sampler is asleep
    time.sleep(0.3)  # noqa: ASYNC251 - holds the loop as CPU-bound work would
    await asyncio.sleep(0.12)  # the sampler wakes late, then once more on time
    sampler.cancel()
    after_sum, after_count = lag_sum_and_count()

    assert after_count - before_count >= 2
    assert after_sum - before_sum >= 0.2
