"""FastAPI's three outermost layers, left out when this service's own do their work.

FastAPI wraps the app's middleware in Starlette's ServerErrorMiddleware (a 500 for an
error that escapes everything, through the app's handler of Exception, and a `send`
wrapper to know whether a response started), its ExceptionTelemetryMiddleware (reports
an error to native OpenTelemetry, which only acts when that telemetry is on) and its
AppBodyLimitMiddleware (FastAPI's `max_body_size`, and a mounted app's share of its
parent's body limit). Per request, each is a call and a coroutine more, and the first
one a wrapper call per message sent. `ServiceApp` leaves the three out when, for this
app, they would do nothing the RequestContextMiddleware (the outermost of the app's
own) does not: no debug tracebacks, native telemetry off, no `max_body_size`.
Otherwise FastAPI's stack stays whole. Either way, unless debug is on (whose
traceback page is ServerErrorMiddleware's), the context middleware answers what
escapes it with the app's handler of Exception, as ServerErrorMiddleware did, but
through its own headers (the request id, the security headers) and without raising
it again for the server to log a second time.
"""

from __future__ import annotations

import inspect
from typing import Any, cast

from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp

from .request_context import RequestContextMiddleware, UnhandledErrorHandler

# FastAPI's two layers are private classes, known here by name rather than imported:
# a FastAPI release that moves or renames them leaves the stack whole (slower, not broken).
TELEMETRY_LAYER = "ExceptionTelemetryMiddleware"
BODY_LIMIT_LAYER = "AppBodyLimitMiddleware"


class ServiceApp(FastAPI):
    """FastAPI, with its outer layers left out when they have nothing to do."""

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if self.debug:
            return stack
        context = answering_escaped_errors(stack)
        telemetry = self._telemetry
        if (
            context is None
            or self.max_body_size is not None
            or telemetry["tracing"]
            or telemetry["metrics"]
            or telemetry["logs"]
        ):
            return stack
        return context


def answering_escaped_errors(stack: ASGIApp) -> RequestContextMiddleware | None:
    """The stack's RequestContextMiddleware, now answering as ServerErrorMiddleware did;
    or None, the stack left as it was, if it is not shaped as expected."""
    if not isinstance(stack, ServerErrorMiddleware):
        return None
    telemetry: Any = stack.app
    if type(telemetry).__name__ != TELEMETRY_LAYER:
        return None
    body_limit: Any = getattr(telemetry, "app", None)
    if type(body_limit).__name__ != BODY_LIMIT_LAYER:
        return None
    context = getattr(body_limit, "app", None)
    handler = stack.handler
    if (
        not isinstance(context, RequestContextMiddleware)
        or handler is None
        or not inspect.iscoroutinefunction(handler)
    ):
        return None
    # The app's handler of Exception, which FastAPI calls with a Request.
    context.unhandled = cast("UnhandledErrorHandler", handler)
    return context
