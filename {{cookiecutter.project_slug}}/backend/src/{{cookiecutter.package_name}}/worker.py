"""`python -m {{ cookiecutter.package_name }}.worker`: the job worker, a second entry point
beside the API's. Same configuration and logging; its own pool, its own metrics
listener (worker.metrics_port); SIGTERM stops it taking jobs and lets running ones
finish within worker.graceful_shutdown_seconds."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from datetime import timedelta

import asyncpg
import structlog
import uvloop
from pgqueuer.adapters.drivers.asyncpg import AsyncpgDriver
from pgqueuer.core.executors import (
    AbstractEntrypointExecutor,
    DatabaseRetryEntrypointExecutor,
    EntrypointExecutorParameters,
)
from pgqueuer.qm import QueueManager
from pgqueuer.queries import Queries

from . import metrics
from .clients.webhooks import WebhookClient
from .configuration import ConfigurationError, DatabaseSettings, Settings, load_settings
from .db.pool import Database
from .db.webhooks import DELIVER
from .domain.webhooks import RetryPolicy
from .jobs.metrics import sample_queue
from .jobs.relay import RelaySchedule, run_relay
from .jobs.webhooks import WebhookJobs
from .telemetry import configure_logging, finish_logging

logger = structlog.get_logger("worker")


def worker_database_settings(settings: Settings) -> DatabaseSettings:
    """The API's database settings with the worker's own pool."""
    return settings.database.model_copy(update={"pool": settings.worker.pool})


def retry_policy(settings: Settings) -> RetryPolicy:
    webhooks = settings.webhooks
    return RetryPolicy(
        max_attempts=webhooks.max_attempts,
        initial_delay_seconds=webhooks.initial_delay_seconds,
        max_delay_seconds=webhooks.max_delay_seconds,
    )


ExecutorFactory = Callable[[EntrypointExecutorParameters], AbstractEntrypointExecutor]


def unexpected_error_retries(settings: Settings) -> ExecutorFactory:
    """For a job that raises (the database away, say): PgQueuer re-queues it with
    exponential back-off; after the last attempt it is held ('failed'), not deleted."""

    def factory(parameters: EntrypointExecutorParameters) -> DatabaseRetryEntrypointExecutor:
        return DatabaseRetryEntrypointExecutor(
            parameters,
            max_attempts=settings.webhooks.max_attempts,
            initial_delay=timedelta(seconds=settings.webhooks.initial_delay_seconds),
            max_delay=timedelta(seconds=settings.webhooks.max_delay_seconds),
        )

    return factory


def register(manager: QueueManager, jobs: WebhookJobs, settings: Settings) -> None:
    factory = unexpected_error_retries(settings)
    manager.entrypoint(DELIVER, on_failure="hold", executor_factory=factory)(jobs.deliver)


def relay_schedule(settings: Settings) -> RelaySchedule:
    worker = settings.worker
    return RelaySchedule(
        interval_seconds=worker.relay_interval_seconds,
        batch_size=worker.relay_batch_size,
        retention_seconds=worker.retention_seconds,
        cleanup_interval_seconds=worker.cleanup_interval_seconds,
        cleanup_batch_size=worker.cleanup_batch_size,
    )


async def run(settings: Settings) -> None:
    name = settings.application.name
    database = await Database.open(worker_database_settings(settings), f"{name}-worker")
    # The queue's own connection, outside the pool: it LISTENs for new jobs and claims them.
    # It caches statements as the pool does: behind PgBouncer in transaction mode (cache
    # 0) a cached statement was gone on the next server connection, and the queue died.
    queue_connection = await asyncpg.connect(
        settings.database.url.get_secret_value(),
        statement_cache_size=settings.worker.pool.statement_cache_size,
        server_settings={"application_name": f"{name}-worker-queue"},
    )
    client = WebhookClient(settings.webhooks)
    manager = QueueManager(Queries(AsyncpgDriver(queue_connection)))
    register(manager, WebhookJobs(database, client, retry_policy(settings)), settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    sampler = asyncio.create_task(sample_queue(database, settings.worker.queue_sample_seconds))
    # A job that blocks the loop delays every other job and the queue's heartbeats.
    lag_sampler = asyncio.create_task(
        metrics.sample_event_loop_lag(settings.metrics.pool_sample_seconds)
    )
    relaying = asyncio.create_task(run_relay(database, relay_schedule(settings)))
    worker = settings.worker
    running = asyncio.create_task(
        manager.run(
            dequeue_timeout=timedelta(seconds=worker.dequeue_timeout_seconds),
            batch_size=worker.batch_size,
            max_concurrent_tasks=worker.concurrency,
            heartbeat_timeout=timedelta(seconds=worker.heartbeat_timeout_seconds),
        )
    )
    logger.info("worker started", concurrency=worker.concurrency)
    try:
        await asyncio.wait(
            (running, asyncio.create_task(stopping.wait())), return_when=asyncio.FIRST_COMPLETED
        )
        if running.done():
            # The queue stopped on its own (its connection lost, say): raise its error,
            # so the process exits non-zero and its orchestrator restarts it.
            running.result()
        else:
            grace = worker.graceful_shutdown_seconds
            logger.info("stopping: finishing running jobs", grace_seconds=grace)
            # The relay stops first: a batch it was moving rolls back, still pending.
            await _cancel(relaying)
            manager.shutdown.set()
            await _finish_within(running, queue_connection, grace)
    finally:
        await _cancel(relaying)
        await _cancel(sampler)
        await _cancel(lag_sampler)
        await client.close()
        await database.close()
        if not queue_connection.is_closed():
            await queue_connection.close()
        logger.info("worker stopped")


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _finish_within(
    running: asyncio.Task[None], queue_connection: asyncpg.Connection, seconds: float
) -> None:
    """Wait for the running jobs; past the grace period, drop the queue's connection
    first, so the jobs still running are not recorded as cancelled (and deleted) but
    stay claimed, and another worker takes them over once their lease runs out."""
    try:
        await asyncio.wait_for(asyncio.shield(running), seconds)
    except TimeoutError:
        logger.warning("grace period over; jobs still running are left to their lease")
        queue_connection.terminate()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running


def main() -> None:
    try:
        settings = load_settings()
    except ConfigurationError as error:
        print(f"{{ cookiecutter.package_name }}.worker: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.logging, settings.application.name)
    if settings.metrics.enabled:
        metrics.serve_or_exit(
            settings.metrics.host,
            settings.worker.metrics_port,
            program="{{ cookiecutter.package_name }}.worker",
            setting="metrics.host/worker.metrics_port (or APP_WORKER__METRICS_PORT)",
        )
    try:
        uvloop.run(run(settings))
    finally:
        finish_logging()


if __name__ == "__main__":
    main()
