"""Builds the application: settings → logging → pool (in the lifespan) → routes."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
{%- if cookiecutter.auth in ["api_key", "both"] %}
from functools import partial
{%- endif %}

import structlog
from fastapi import FastAPI
from fastapi_swagger import patch_fastapi
from starlette.middleware.cors import CORSMiddleware

from . import metrics
{%- if cookiecutter.auth in ["api_key", "both"] %}
from .auth.api_keys import ApiKeyVerifier
{%- endif %}
{%- if cookiecutter.auth in ["oidc", "both"] %}
from .auth.lifecycle import token_verifier
{%- endif %}
from .configuration import Settings, load_settings
{%- if cookiecutter.auth in ["api_key", "both"] %}
from .db import api_keys
{%- endif %}
from .db.budget import BudgetGuard
from .db.pool import Database
from .db.session_settings import warn_if_differing
from .handlers import health{% if cookiecutter.auth != "none" %}, identity{% endif %}{% if cookiecutter.example_domain == "ledger" %}, ledger{% endif %}{% if cookiecutter.background_worker == "yes" %}, webhooks{% endif %}
{%- if cookiecutter.auth != "none" %}
from .handlers.authentication import register_authentication
{%- endif %}
from .handlers.lean_dispatch import LeanDispatchMiddleware
from .handlers.limits import RequestLimitsMiddleware
from .handlers.outer_layers import ServiceApp
from .handlers.problems import register_problem_handlers
from .handlers.request_context import RequestContextMiddleware
from .handlers.routes import add_routes
from .telemetry import configure_logging, finish_logging

logger = structlog.get_logger("startup")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI app; uvicorn calls this once per worker process (factory mode)."""
    settings = settings or load_settings()
    request_line = configure_logging(settings.logging, settings.application.name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
{%- if cookiecutter.auth in ["oidc", "both"] %}
        async with token_verifier(settings.auth) as verifier:
            app.state.authentication.tokens = verifier
            async with serving(app):
                yield

    @asynccontextmanager
    async def serving(app: FastAPI) -> AsyncIterator[None]:
{%- endif %}
        database = await Database.open(settings.database, settings.application.name)
        app.state.database = database
{%- if cookiecutter.auth in ["api_key", "both"] %}
        app.state.authentication.api_keys = ApiKeyVerifier(
            partial(api_keys.find_active, database),
            partial(api_keys.active_ids, database),
            settings.auth.api_key_pepper.get_secret_value().encode(),
            ttl_seconds=settings.auth.api_key_cache_seconds,
            unknown_refresh_seconds=settings.auth.api_key_unknown_refresh_seconds,
            capacity=settings.auth.api_key_cache_size,
        )
{%- endif %}
        sampler = asyncio.create_task(
            metrics.sample_worker(database.stats, settings.metrics.pool_sample_seconds)
        )
        budget = settings.database.budget
        configured = budget.replicas * settings.server.workers * settings.database.pool.max_size
        guard = BudgetGuard(database, settings.application.name, configured)
        budget_check = asyncio.create_task(
            guard.watch(metrics.record_budget, budget.check_interval_seconds)
        )
        timeouts_check = asyncio.create_task(warn_if_differing(database, settings.database))
        # Start-up's objects (every module, the app, its routes and models, the pool) out
        # of the garbage collector's sight, its garbage collected first: a full
        # collection then walks what serving allocated, not all ~96,000 of them
        # (measured, issue 19: 72-86 ms of CPU per full collection of a warm worker,
        # under 0.1 ms frozen). uvicorn spawns its workers rather than forking
        # them, so each worker freezes its own.
        gc.collect()
        gc.freeze()
        logger.info("started", environment=settings.environment, pool=database.stats())
        try:
{%- if cookiecutter.example_domain == "ledger" %}
            async with ledger.expired_keys_deleted(database, settings.ledger.idempotency):
                yield
{%- else %}
            yield
{%- endif %}
        finally:
            # An app created again in this process (the tests) freezes what is alive then.
            gc.unfreeze()
            for task in (sampler, budget_check, timeouts_check):
                task.cancel()
            try:
                await database.close()
            finally:
                metrics.worker_stopped()
            logger.info("stopped")
            finish_logging()

    docs = settings.application.docs_enabled
    # FastAPI's native OpenTelemetry looks up the global providers on every request,
    # even when no SDK is configured; this service reports through its metrics listener and logs.
    opentelemetry = settings.application.opentelemetry
    # FastAPI, less its outer layers while they have nothing to do (handlers.outer_layers).
    app = ServiceApp(
        telemetry={"tracing": opentelemetry, "metrics": opentelemetry, "logs": opentelemetry},
        title="{{ cookiecutter.project_name }}",
        description="{{ cookiecutter.description }}",
        # Relative: the API answers on whatever host and path prefix serve it.
        servers=[{"url": "/", "description": "this deployment"}],
        # The template picks no license for the API; name yours here (an SPDX identifier).
        license_info={"name": "Proprietary", "identifier": "LicenseRef-Proprietary"},
        lifespan=lifespan,
        docs_url=None,  # served below, from a package rather than a CDN
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    # API traffic first: FastAPI tries the routes in order on every request.
    add_routes(
        app.router,
        [
{%- if cookiecutter.example_domain == "ledger" %}
            *ledger.ROUTES,
{%- endif %}
{%- if cookiecutter.background_worker == "yes" %}
            *webhooks.router.routes,
            *webhooks.dead_letters_router.routes,
{%- endif %}
{%- if cookiecutter.auth != "none" %}
            *identity.router.routes,
{%- endif %}
            *health.router.routes,
        ],
    )
    # Read by handlers.dependencies.SettingsDep.
    app.state.settings = settings
    # Each add_middleware wraps the ones before: the first added runs innermost.
    # Innermost, so a lean route's request passes every layer below as any other does.
    app.add_middleware(LeanDispatchMiddleware, fastapi_app=app)
    # The limits also answer unexpected errors (500), here rather than in Starlette's
    # outermost error middleware: so every problem passes through CORS and the
    # request context, and the connection stays open.
    app.add_middleware(
        RequestLimitsMiddleware,
        max_body_bytes=settings.http.max_body_bytes,
        timeout_seconds=settings.http.request_timeout_seconds,
    )
    if settings.cors.allowed_origins:
        # Origins are the gate; the requests carry no credentials, so any method,
        # request header and readable response header (Location, say) is
        # fine for them. Outside the limits, so a browser can read their 413 and
        # 504; inside the request context, so a preflight is logged with a request
        # id. With no origins, no middleware.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors.allowed_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["*"],
            max_age=600,
        )
    app.add_middleware(
        RequestContextMiddleware,
        request_line=request_line,
        hsts_max_age_seconds=settings.http.hsts_max_age_seconds,
        hsts_always=settings.http.hsts_always,
        hsts_include_subdomains=settings.http.hsts_include_subdomains,
    )
    register_problem_handlers(app)
{%- if cookiecutter.auth != "none" %}
    register_authentication(app, settings.auth.max_header_bytes)
{%- endif %}
    if docs:
        # Swagger UI's script and stylesheet from the fastapi-swagger package (a current
        # Swagger UI 5, which reads OpenAPI 3.1), served under /swagger/: /docs works offline.
        patch_fastapi(app, docs_url="/docs", redirect_from_root_to_docs=False)
    return app
