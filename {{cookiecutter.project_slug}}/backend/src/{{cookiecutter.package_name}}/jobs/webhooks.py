"""The webhook job: deliver one event to one subscription (then record the outcome,
retry later, or dead-letter it). The relay (jobs/relay.py) enqueues these."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta

import orjson
import structlog
from pgqueuer.errors import RetryRequested
from pgqueuer.models import Job

from ..clients.webhooks import WebhookClient
from ..db import webhooks
from ..db.pool import Database
from ..db.relay import REQUEST_ID_HEADER
from ..domain.events import EventId
from ..domain.webhooks import Outcome, RetryPolicy, SubscriptionId, outcome_of
from . import metrics

logger = structlog.get_logger("jobs")

STATUS_AFTER = {Outcome.DELIVERED: "delivered", Outcome.GONE: "abandoned"}


def request_id_of(job: Job) -> str | None:
    value = (job.headers or {}).get(REQUEST_ID_HEADER)
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class WebhookJobs:
    database: Database
    client: WebhookClient
    policy: RetryPolicy

    async def deliver(self, job: Job) -> None:
        data = orjson.loads(job.payload or b"{}")
        event_id = EventId(uuid.UUID(data["event_id"]))
        subscription_id = SubscriptionId(data["subscription_id"])
        with structlog.contextvars.bound_contextvars(
            event_id=str(event_id),
            subscription_id=subscription_id,
            request_id=request_id_of(job),
            job_id=job.id,
        ):
            await self._deliver(event_id, subscription_id)

    async def _deliver(self, event_id: EventId, subscription_id: SubscriptionId) -> None:
        stored = await webhooks.load_event(self.database, event_id)
        subscription = await webhooks.get_subscription(self.database, subscription_id)
        if stored is None or subscription is None:
            logger.info("event or subscription deleted; nothing to deliver")
            return
        if not subscription.enabled:
            async with self.database.connection() as connection:
                await webhooks.abandon(connection, event_id, subscription_id)
            logger.info("subscription disabled; delivery abandoned")
            return
        answer = await self.client.send(subscription, stored.event)
        outcome = outcome_of(answer.status_code)
        metrics.ATTEMPTS.labels(outcome.value).inc()
        async with self.database.connection() as connection, connection.transaction():
            delivery = await webhooks.lock_delivery(connection, event_id, subscription_id)
            if delivery is None or delivery.status != "pending":
                # Already settled by an earlier run of this job (picked again after a crash).
                return
            attempts = delivery.attempts + 1
            if outcome is Outcome.RETRY and self.policy.gives_up_after(attempts):
                status = "dead"
            else:
                status = STATUS_AFTER.get(outcome, "pending")
            await webhooks.record_attempt(
                connection,
                event_id,
                subscription_id,
                status=status,
                status_code=answer.status_code,
                error=answer.error,
            )
        self._log_outcome(outcome, status, attempts, answer.status_code, answer.error)
        if outcome is Outcome.GONE:
            await webhooks.disable_subscription(
                self.database, subscription_id, "the receiver answered 410 Gone"
            )
        if status == "pending":
            delay = self.policy.delay_after(attempts, random.uniform)
            raise RetryRequested(delay=timedelta(seconds=delay), reason=answer.error or "")

    def _log_outcome(
        self,
        outcome: Outcome,
        status: str,
        attempts: int,
        status_code: int | None,
        error: str | None,
    ) -> None:
        fields = {"attempts": attempts, "status_code": status_code, "error": error}
        if outcome is Outcome.DELIVERED:
            logger.info("webhook delivered", **fields)
            return
        metrics.FAILURES.inc()
        if status == "dead":
            metrics.DEAD_LETTERS.inc()
            logger.warning("webhook dead-lettered after its last attempt", **fields)
        elif outcome is Outcome.GONE:
            logger.warning("receiver answered 410; subscription disabled", **fields)
        else:
            logger.info("webhook attempt failed; retrying", **fields)
