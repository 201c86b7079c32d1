"""Per-request limits as pure ASGI middleware: body size (413) and time (504),
both answered as RFC 9457 problems."""

from __future__ import annotations

import asyncio

import structlog
from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import problem_response

logger = structlog.get_logger("http")


class BodySizeLimitMiddleware:
    """413 for a body over `max_body_bytes`. Starlette's RequestBodyLimitMiddleware
    counts the bytes as they stream (its 413 is an HTTPException, which the problem
    handlers render), but a declared Content-Length over the limit on a route that
    never reads the body gets its plain-text 413: that case is answered here first."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.counting = RequestBodyLimitMiddleware(app, max_body_size=max_body_bytes)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            response = problem_response(
                Request(scope),
                413,
                detail=f"The request body is larger than {self.max_body_bytes} bytes.",
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        await self.counting(scope, receive, send)


# Methods that change nothing: cancelling one at its deadline leaves nothing undecided.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class RequestTimeoutMiddleware:
    """Cancel a request still running after `timeout_seconds` and answer 504
    (uvicorn has no per-request timeout), and answer an unexpected error with a 500
    problem, logged once. A response already started cannot be replaced: then the
    connection is dropped, as uvicorn does for any failure."""

    def __init__(self, app: ASGIApp, timeout_seconds: float) -> None:
        self.app = app
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        deadline = asyncio.timeout(self.timeout_seconds)
        try:
            async with deadline:
                await self.app(scope, receive, send_tracking_start)
        except Exception as error:
            if started:
                raise
            if not (isinstance(error, TimeoutError) and deadline.expired()):
                # Unexpected, a TimeoutError of the handler's own code included.
                await self._unexpected(scope, receive, send)
                return
            logger.warning("request timed out", timeout_seconds=self.timeout_seconds)
            response = problem_response(
                Request(scope),
                504,
                problem_type="/problems/request-timeout",
                title="Request timed out",
                detail=self._timed_out(scope["method"]),
            )
            await response(scope, receive, send)

    async def _unexpected(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A logger of the logging configured now, not cached at first use: an
        # app created again in the same process (tests) logs where it is told.
        structlog.get_logger("errors").exception("unhandled exception")
        response = problem_response(Request(scope), 500, detail="An unexpected error occurred.")
        await response(scope, receive, send)

    def _timed_out(self, method: str) -> str:
        took = f"The request took longer than {self.timeout_seconds} s"
        if method in SAFE_METHODS:
            return f"{took} and was cancelled."
        # Cancelled during or after its COMMIT, a change may have been made.
        return (
            f"{took} and was stopped; its outcome is unknown: it may have been applied. "
{%- if cookiecutter.example_domain == "ledger" %}
            "Retrying with the same Idempotency-Key is safe: it is applied at most once."
{%- else %}
            "Check whether it was applied before retrying it."
{%- endif %}
        )
