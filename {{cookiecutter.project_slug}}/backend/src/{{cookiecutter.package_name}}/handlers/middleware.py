"""Request context as pure ASGI middleware (no BaseHTTPMiddleware: it costs a task
per request and breaks contextvars propagation)."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import metrics
from .instrumentation import record_request

REQUEST_ID_HEADER = b"x-request-id"
# A caller's id is kept only if it is short and plain, so it cannot forge log fields.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

logger = structlog.get_logger("http")


def _request_id_from(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            candidate = str(value.decode("latin-1"))
            if _VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Binds a request id to every log line of the request, echoes it in the
    response, logs one line per request with its status and duration, and records
    the same in the metrics, labelled by route template (instrumentation.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id_from(scope)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                echoed = (REQUEST_ID_HEADER, request_id.encode("latin-1"))
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        metrics.REQUESTS_IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            seconds = time.perf_counter() - started
            metrics.REQUESTS_IN_PROGRESS.dec()
            record_request(scope, status, seconds)
            logger.info(
                "request finished",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round(seconds * 1000, 2),
            )
