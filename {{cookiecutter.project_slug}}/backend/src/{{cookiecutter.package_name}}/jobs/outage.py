"""An outage of a loop that retries every interval (the relay, retention, the queue
sampler): one warning when it starts failing, one line when it works again, and a
counter of every failed round. A warning a round (the relay's is 0.2 s) flooded the
logs for as long as the database was away."""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from prometheus_client import Counter

logger = structlog.get_logger("worker")

LOOP_FAILURES = Counter(
    "worker_loop_failures_total", "Failed rounds of the worker's retrying loops", ["loop"]
)


@dataclass
class Outage:
    """What `loop` (its name in logs and metrics) went through since it last worked."""

    loop: str
    failed_rounds: int = 0
    started: float = 0.0

    def failed(self, error: BaseException) -> None:
        LOOP_FAILURES.labels(self.loop).inc()
        if not self.failed_rounds:
            self.started = time.monotonic()
            logger.warning(
                "a worker loop failed; retrying each round, quietly until it works",
                loop=self.loop,
                error=repr(error),
            )
        self.failed_rounds += 1

    def worked(self) -> None:
        if self.failed_rounds:
            logger.info(
                "a worker loop works again",
                loop=self.loop,
                failed_rounds=self.failed_rounds,
                seconds=round(time.monotonic() - self.started, 3),
            )
            self.failed_rounds = 0
