"""The outbox relay, a task of the worker process: every `relay_interval_seconds` it
moves pending outbox events to delivery jobs, a batch per transaction (db/relay.py),
and every `cleanup_interval_seconds` it deletes what `retention_seconds` no longer
keeps. Polling, not a NOTIFY from each business transaction: a notification makes
PostgreSQL serialise the commits of the transactions that send one, which halved the
transfers per second; the price is up to one interval of delivery latency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass

import structlog

from ..db import relay
from ..db.pool import Database
from . import metrics
from .outage import Outage

logger = structlog.get_logger("relay")


@dataclass(frozen=True)
class RelaySchedule:
    interval_seconds: float
    batch_size: int
    retention_seconds: float
    cleanup_interval_seconds: float
    cleanup_batch_size: int


async def drain(database: Database, batch_size: int) -> int:
    """Move pending events until a batch comes back with room left; returns the
    events moved."""
    moved_total = 0
    while True:
        moved = await relay.relay_batch(database, batch_size)
        moved_total += moved.events
        metrics.RELAYED.inc(moved.events)
        if moved.events:
            logger.info("events relayed", events=moved.events, deliveries=moved.deliveries)
        if not moved.full:
            return moved_total


async def clean_up(database: Database, schedule: RelaySchedule) -> int:
    deleted_total = 0
    while True:
        expired = await relay.expire(
            database, schedule.retention_seconds, schedule.cleanup_batch_size
        )
        if expired.dead_deliveries:
            metrics.DEAD_LETTERS.inc(expired.dead_deliveries)
            logger.warning(
                "deliveries dead-lettered: their held jobs expired",
                deliveries=expired.dead_deliveries,
            )
        if not expired.rows:
            break
        deleted_total += expired.rows
    if deleted_total:
        logger.info("expired rows deleted", rows=deleted_total)
    return deleted_total


async def run_relay(database: Database, schedule: RelaySchedule) -> None:
    """Until cancelled. A failure (the database away, say) is counted, logged once an
    outage, and the next round tries again: the batch it was moving rolled back and is
    still pending. Retention is an outage of its own: a clean-up failing each time (a
    lock, a timeout) read as the relay failing and working again every interval."""
    relaying, retention = Outage("relay"), Outage("retention")
    next_cleanup = time.monotonic()
    while True:
        await _round(relaying, drain(database, schedule.batch_size))
        if time.monotonic() >= next_cleanup:
            next_cleanup = time.monotonic() + schedule.cleanup_interval_seconds
            await _round(retention, clean_up(database, schedule))
        await asyncio.sleep(schedule.interval_seconds)


async def _round(outage: Outage, work: Awaitable[int]) -> None:
    try:
        await work
    except Exception as error:  # the relay must outlive any one failure
        outage.failed(error)
    else:
        outage.worked()
