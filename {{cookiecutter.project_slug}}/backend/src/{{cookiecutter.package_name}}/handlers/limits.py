"""Per-request limits as one pure ASGI middleware: body size (413), time (504) and
unexpected errors (500), answered as RFC 9457 problems."""

from __future__ import annotations

import asyncio
from typing import cast

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import error_log, problem_response

logger = structlog.get_logger("http")

# Methods that change nothing: cancelling one at its deadline leaves nothing undecided.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Past 64 bits (20 digits): no body limit is that large; such a length reads as this.
MAX_LENGTH_DIGITS = 19
TOO_MANY_DIGITS = 10**MAX_LENGTH_DIGITS


def _body_headers(scope: Scope) -> tuple[int | None, bool]:
    """(Content-Length as a number or None, whether the body is chunked)."""
    declared, chunked = None, False
    for name, value in scope["headers"]:
        if name == b"content-length":
            declared = _declared_length(value)
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked


def _declared_length(value: bytes) -> int | None:
    """A Content-Length's number, or None if it is not all ASCII digits. Never int() of
    more than 4,300 digits, which raises: zeros may lead (llhttp lets them through),
    and a server other than httptools may pass any number of digits. A length of
    more significant digits than any body limit reads as at least TOO_MANY_DIGITS."""
    if not value.isdigit():
        return None
    digits = value.lstrip(b"0") or b"0"
    return TOO_MANY_DIGITS if len(digits) > MAX_LENGTH_DIGITS else int(digits)


class RequestLimitsMiddleware:
    """Per-request limits, in one pure ASGI layer, answered as RFC 9457 problems:

    - body size: 413 for a declared Content-Length over `max_body_bytes` (even on a
      route that never reads the body), and while the body streams in (an
      HTTPException from `receive`, which the problem handlers render);
    - time: cancel a request still running after `timeout_seconds` and answer 504
      (uvicorn has no per-request timeout). One timer handle per request
      (`loop.call_at`), not `asyncio.timeout`, whose context manager costs about
      twice as much;
    - an unexpected error: a 500 problem, logged once.

    A response already started cannot be replaced: then the connection is dropped,
    as uvicorn does for any failure."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _body_headers(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        if chunked:  # a declared length is the server's to enforce; a chunked body is ours
            receive = self._counting(receive)
        started = False

        async def send_tracking_start(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        # An ASGI server runs each request in a task of its own.
        task = cast("asyncio.Task[None]", asyncio.current_task())
        loop = asyncio.get_running_loop()
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        deadline = loop.call_at(loop.time() + self.timeout_seconds, expire)
        try:
            await self.app(scope, receive, send_tracking_start)
        except asyncio.CancelledError:
            # Ours only if nobody else cancelled the task too (server shutdown, say).
            if not expired or task.uncancel() > 0:
                raise
            if started:
                raise TimeoutError from None
            await self._timed_out(scope, receive, send)
        except Exception:
            if expired:  # our cancellation, turned into another error by the app's clean-up
                task.uncancel()
            if started:
                raise
            await self._failed(scope, receive, send, expired=expired)
        else:
            if expired:  # the app caught our cancellation and answered anyway
                task.uncancel()
        finally:
            deadline.cancel()

    def _counting(self, receive: Receive) -> Receive:
        """`receive`, raising 413 once the body streamed in exceeds the limit."""
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # No "Connection: close": closing while the client still streams
                    # its body resets the connection before it reads the 413.
                    raise HTTPException(413)
            return message

        return counting_receive

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            Request(scope),
            413,
            detail=f"The request body is larger than {self.max_body_bytes} bytes.",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    async def _timed_out(self, scope: Scope, receive: Receive, send: Send) -> None:
        logger.warning("request timed out", timeout_seconds=self.timeout_seconds)
        response = problem_response(
            Request(scope),
            504,
            problem_type="/problems/request-timeout",
            title="Request timed out",
            detail=self._timed_out_detail(scope["method"]),
        )
        await response(scope, receive, send)

    async def _failed(self, scope: Scope, receive: Receive, send: Send, *, expired: bool) -> None:
        """An error from the app: unexpected (500, a TimeoutError of the handler's own
        code included), or raised while the deadline cancelled it (still a 504)."""
        errors = error_log()
        if expired:
            errors.exception("error while cancelled at the deadline")
            await self._timed_out(scope, receive, send)
            return
        errors.exception("unhandled exception")
        response = problem_response(Request(scope), 500, detail="An unexpected error occurred.")
        await response(scope, receive, send)

    def _timed_out_detail(self, method: str) -> str:
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
