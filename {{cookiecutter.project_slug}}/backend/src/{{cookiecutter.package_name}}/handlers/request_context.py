"""The request context, as one pure ASGI middleware (no BaseHTTPMiddleware: it costs
a task per request and breaks contextvars propagation): request id, the security
headers, the request's log line and its metrics. One layer, one `send` wrapper, rather
than one middleware per concern: each layer adds a call and a wrapper to every request."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import metrics
from ..telemetry import RequestLine, start_request_fields

REQUEST_ID_HEADER = b"x-request-id"
# A caller's id is kept only if it is short and plain, so it cannot forge log fields.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# An API answers JSON: nothing may sniff it into another type, frame it, or learn
# where its users came from. Raw (bytes) headers, as ASGI sends them: nothing is
# encoded or parsed per request.
Header = tuple[bytes, bytes]
# The app's handler of Exception: what answers an error no layer inside answered.
UnhandledErrorHandler = Callable[[Request, Exception], Awaitable[Response]]
SECURITY_HEADERS: tuple[Header, ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
)
HSTS_HEADER = b"strict-transport-security"
# Every header this middleware may add.
OWN_HEADER_NAMES = frozenset(
    {*(name for name, _ in SECURITY_HEADERS), HSTS_HEADER, REQUEST_ID_HEADER}
)


def _request_id_from(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            candidate = str(value.decode("latin-1"))
            if _VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
    # 128 random bits as 32 hex digits, the form of uuid4().hex (which keeps 122 of
    # them) at a quarter of its cost: no UUID object is built (timeit: 0.5 vs 2.1 µs).
    return os.urandom(16).hex()


def _is_https(scope: Scope) -> bool:
    """HTTPS to uvicorn, or to the TLS proxy in front (X-Forwarded-Proto). Trusting the
    header here is safe: HSTS sent over plain HTTP is ignored by browsers."""
    if scope.get("scheme") == "https":
        return True
    for name, value in scope["headers"]:
        if name == b"x-forwarded-proto":
            return bool(value.split(b",")[0].strip().lower() == b"https")
    return False


class RequestContextMiddleware:
    """Binds a request id to every log line of the request and echoes it in the
    response; adds the security headers (and Strict-Transport-Security on HTTPS
    requests, or on all with `hsts_always`) unless the route set its own value; logs
    one line per request with its status and duration, and records the same in the
    metrics, labelled by route template."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        request_line: RequestLine,
        hsts_max_age_seconds: int,
        hsts_always: bool = False,
        hsts_include_subdomains: bool = False,
    ) -> None:
        self.app = app
        self.request_line = request_line
        hsts = f"max-age={hsts_max_age_seconds}"
        if hsts_include_subdomains:
            hsts += "; includeSubDomains"
        self.hsts: Header = (HSTS_HEADER, hsts.encode())
        self.hsts_max_age_seconds = hsts_max_age_seconds
        self.hsts_always = hsts_always
        # The app's 500 handler, when this layer stands in for Starlette's outermost
        # ServerErrorMiddleware (handlers.outer_layers); None: that middleware is there.
        self.unhandled: UnhandledErrorHandler | None = None

    def _added_headers(self, scope: Scope, request_id: str) -> tuple[Header, ...]:
        echoed = (REQUEST_ID_HEADER, request_id.encode("latin-1"))
        if self.hsts_max_age_seconds and (self.hsts_always or _is_https(scope)):
            return (*SECURITY_HEADERS, self.hsts, echoed)
        return (*SECURITY_HEADERS, echoed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = False
        # Where an error escaping every layer is answered: `send` while this layer's own
        # first steps run, then through its headers (the request id, the security headers).
        answer = send
        # All of it inside the `try`, as it was all inside ServerErrorMiddleware: an
        # error in this layer's own first steps is the app's 500 problem too.
        try:
            request_id = _request_id_from(scope)
            start_request_fields(request_id)
            began = time.perf_counter()
            added = self._added_headers(scope, request_id)

            async def send_with_headers(message: Message) -> None:
                nonlocal status, started
                if message["type"] == "http.response.start":
                    status, started = message["status"], True
                    headers = list(message.get("headers", ()))
                    present = {name.lower() for name, _ in headers}
                    if present.isdisjoint(OWN_HEADER_NAMES):
                        # The usual case, the route set none of them: no generator to run.
                        headers.extend(added)
                    else:
                        # The request id is always ours; a route's own security header wins.
                        headers.extend(
                            header
                            for header in added
                            if header[0] == REQUEST_ID_HEADER or header[0] not in present
                        )
                    message["headers"] = headers
                await send(message)

            answer = send_with_headers
            metrics.REQUEST_TALLY.started()
            try:
                await self.app(scope, receive, send_with_headers)
            except Exception:
                # Also once a response started: broken off, it is a server error whatever
                # its first line said, and counted and logged as one (then left to the server).
                status = 500
                raise
            finally:
                seconds = time.perf_counter() - began
                metrics.REQUEST_TALLY.finished(scope, status, seconds)
                self.request_line(scope["method"], scope["path"], status, round(seconds * 1000, 2))
        except Exception as error:
            if self.unhandled is None or started:
                # ServerErrorMiddleware's to answer (FastAPI's whole stack), or too late
                # to answer (a response started): the server logs it and drops the connection.
                raise
            # Answered as ServerErrorMiddleware did, but through this layer's headers; not
            # raised again, which would have the server log it a second time after the
            # handler, and close the connection.
            response = await self.unhandled(Request(scope), error)
            await response(scope, receive, answer)
