"""The worker's metrics, served on its own listener (worker.metrics_port)."""

from __future__ import annotations

import asyncio

from prometheus_client import Counter, Gauge

from ..db import webhooks
from ..db.pool import Database
from .outage import Outage

QUEUE_DEPTH = Gauge("jobs_queued", "Jobs waiting in the queue, due or deferred")
OLDEST_DUE_AGE = Gauge(
    "jobs_oldest_due_age_seconds", "How long the oldest due job has waited to be picked"
)
OUTBOX_PENDING = Gauge("outbox_pending_events", "Events not yet moved to jobs by the relay")
# Grows without bound when the relay is stuck, where the count may look steady.
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "outbox_oldest_pending_age_seconds", "Age of the oldest event the relay has not moved"
)
RELAYED = Counter("outbox_relayed_events_total", "Events the relay moved to delivery jobs")
ATTEMPTS = Counter("webhook_delivery_attempts_total", "Delivery attempts, by outcome", ["outcome"])
FAILURES = Counter("webhook_delivery_failures_total", "Attempts without a 2xx answer")
DEAD_LETTERS = Counter(
    "webhook_dead_letters_total", "Deliveries given up: attempts spent, or held job expired"
)


async def sample_queue(database: Database, interval_seconds: float) -> None:
    """Every interval, the queue's depth and the age of its oldest due job."""
    outage = Outage("queue_sampler")
    while True:
        try:
            figures = await webhooks.queue_figures(database)
        except Exception as error:  # the sampler must outlive any one failure
            outage.failed(error)
        else:
            outage.worked()
            QUEUE_DEPTH.set(figures.jobs)
            OLDEST_DUE_AGE.set(figures.oldest_due_seconds)
            OUTBOX_PENDING.set(figures.pending_events)
            OUTBOX_OLDEST_PENDING_AGE.set(figures.oldest_pending_seconds)
        await asyncio.sleep(interval_seconds)
