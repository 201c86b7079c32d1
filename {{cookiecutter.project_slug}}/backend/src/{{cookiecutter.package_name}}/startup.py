"""Builds the application: settings → logging → pool (in the lifespan) → routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from . import metrics
from .configuration import Settings, load_settings
from .db.budget import BudgetGuard
from .db.pool import Database
from .db.session_settings import warn_if_differing
from .handlers import health, instrumentation{% if cookiecutter.example_domain == "ledger" %}, ledger{% endif %}
from .handlers.limits import BodySizeLimitMiddleware, RequestTimeoutMiddleware
from .handlers.middleware import RequestContextMiddleware
from .handlers.problems import register_problem_handlers
from .handlers.security import SecurityHeadersMiddleware
from .telemetry import configure_logging, finish_logging

logger = structlog.get_logger("startup")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI app; uvicorn calls this once per worker process (factory mode)."""
    settings = settings or load_settings()
    configure_logging(settings.logging, settings.application.name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = await Database.open(settings.database, settings.application.name)
        app.state.database = database
        sampler = asyncio.create_task(
            metrics.sample_pool(database.stats, settings.metrics.pool_sample_seconds)
        )
        budget = settings.database.budget
        configured = budget.replicas * settings.server.workers * settings.database.pool.max_size
        guard = BudgetGuard(database, settings.application.name, configured)
        budget_check = asyncio.create_task(
            guard.watch(metrics.record_budget, budget.check_interval_seconds)
        )
        timeouts_check = asyncio.create_task(warn_if_differing(database, settings.database))
        logger.info("started", environment=settings.environment, pool=database.stats())
        try:
            yield
        finally:
            sampler.cancel()
            budget_check.cancel()
            timeouts_check.cancel()
            await database.close()
            metrics.worker_stopped()
            logger.info("stopped")
            finish_logging()

    docs = settings.application.docs_enabled
    # FastAPI's native OpenTelemetry looks up the global providers on every request,
    # even when no SDK is configured; this service reports through /metrics and logs.
    opentelemetry = settings.application.opentelemetry
    app = FastAPI(
        telemetry={"tracing": opentelemetry, "metrics": opentelemetry, "logs": opentelemetry},
        title="{{ cookiecutter.project_name }}",
        description="{{ cookiecutter.description }}",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    if settings.cors.allowed_origins:
        # Origins are the gate; the requests carry no credentials, so any method,
        # request header and readable response header (Location, say) is
        # fine for them. Added first, so it runs inside the request context: a
        # preflight is logged with a request id. With no origins, no middleware.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors.allowed_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["*"],
            max_age=600,
        )
    # Each add_middleware wraps the ones before: the first added runs innermost.
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.http.max_body_bytes)
    app.add_middleware(
        RequestTimeoutMiddleware, timeout_seconds=settings.http.request_timeout_seconds
    )
    app.add_middleware(
        SecurityHeadersMiddleware,
        hsts_max_age_seconds=settings.http.hsts_max_age_seconds,
        hsts_always=settings.http.hsts_always,
    )
    app.add_middleware(RequestContextMiddleware)
    register_problem_handlers(app)
{%- if cookiecutter.example_domain == "ledger" %}
    # FastAPI tries the included routers in order on every request: the API's
    # traffic first, the probes after (measured: the template's README, "Performance").
    app.include_router(ledger.create_router(settings.ledger))
{%- endif %}
    app.include_router(health.router)
    if settings.metrics.enabled:
        app.include_router(instrumentation.router)
    return app
