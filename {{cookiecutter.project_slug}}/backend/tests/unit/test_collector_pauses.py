"""The garbage collector's pauses, per generation, in the metrics (gc_pause_seconds)."""

from __future__ import annotations

import asyncio
import gc

import pytest
from prometheus_client import REGISTRY

from {{ cookiecutter.package_name }}.metrics import CollectorPauses, sample_worker

pytestmark = pytest.mark.anyio

STATS = {"size": 1, "in_use": 0, "idle": 1, "waiting": 0, "max_size": 1}


def full_collections() -> tuple[float, float]:
    """(count, seconds) of the full (generation 2) collections recorded so far."""
    labels = {"generation": "2"}
    count = REGISTRY.get_sample_value("gc_pause_seconds_count", labels) or 0.0
    seconds = REGISTRY.get_sample_value("gc_pause_seconds_sum", labels) or 0.0
    return count, seconds


async def test_the_worker_sampler_records_a_collection() -> None:
    before_count, before_seconds = full_collections()
    sampler = asyncio.create_task(sample_worker(lambda: STATS, interval_seconds=0.05))
    await asyncio.sleep(0.01)  # the sampler is asleep
    gc.collect()
    # It wakes and records the pause: within a few intervals, or seconds on a busy machine.
    for _ in range(100):
        await asyncio.sleep(0.05)
        after_count, after_seconds = full_collections()
        if after_count > before_count:
            break
    sampler.cancel()

    assert after_count - before_count >= 1
    assert after_seconds > before_seconds


def test_collections_are_timed_only_while_entered() -> None:
    """Left, nothing of it stays in gc.callbacks (each app's lifespan enters one)."""
    with CollectorPauses() as pauses:
        gc.collect()
    gc.collect()
    before_count, _ = full_collections()
    pauses.record()
    after_count, _ = full_collections()

    assert after_count - before_count == 1
