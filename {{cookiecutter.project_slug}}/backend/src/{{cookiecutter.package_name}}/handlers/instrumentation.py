"""Request metrics as pure ASGI middleware, and GET /metrics.

Hand-written rather than a FastAPI instrumentation package: FastAPI already puts
the matched route in the scope ("route"), so labelling by route template costs a
dictionary lookup here, where such packages match every route again per request.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import metrics
from .dependencies import DatabaseDep

router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
async def scrape(database: DatabaseDep) -> Response:
    """Prometheus text format: every worker's values (metrics.py)."""
    metrics.record_pool(database.stats())
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else metrics.UNMATCHED_ROUTE


class MetricsMiddleware:
    """Latency and status of every HTTP request, labelled by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # if the app fails before answering, the server sends a 500
        started = time.perf_counter()

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.REQUESTS_IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            metrics.REQUESTS_IN_PROGRESS.dec()
            route, method = _route_template(scope), scope["method"]
            metrics.REQUEST_DURATION.labels(method, route).observe(time.perf_counter() - started)
            metrics.REQUESTS.labels(method, route, str(status)).inc()
