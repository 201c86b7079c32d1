"""FastAPI's three outermost layers, left out when this service's own do their work.

FastAPI wraps the app's middleware in Starlette's ServerErrorMiddleware (a 500 for an
error that escapes everything, through the app's handler of Exception, and a `send`
wrapper to know whether a response started), its ExceptionTelemetryMiddleware (reports
an error to native OpenTelemetry, which only acts when that telemetry is on) and its
AppBodyLimitMiddleware (FastAPI's `max_body_size`, and a mounted app's share of its
parent's body limit). Per request, each is a call and a coroutine more, and the first
one a wrapper call per message sent. `ServiceApp` leaves the three out when, for this
app, they would do nothing the RequestContextMiddleware (the outermost of the app's
own) does not: no debug tracebacks, native telemetry off, no `max_body_size`; the
context middleware then answers what escapes it with the app's handler of Exception,
as ServerErrorMiddleware did, but through its own headers. Otherwise FastAPI's stack
stays whole.
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
        telemetry = self._telemetry
        if (
            self.debug
            or self.max_body_size is not None
            or telemetry["tracing"]
            or telemetry["metrics"]
            or telemetry["logs"]
        ):
            return stack
        return without_outer_layers(stack)


def without_outer_layers(stack: ASGIApp) -> ASGIApp:
    """The stack from its RequestContextMiddleware in, that middleware now answering
    as ServerErrorMiddleware did; or `stack` unchanged if it is not shaped as expected."""
    if not isinstance(stack, ServerErrorMiddleware):
        return stack
    telemetry: Any = stack.app
    if type(telemetry).__name__ != TELEMETRY_LAYER:
        return stack
    body_limit: Any = getattr(telemetry, "app", None)
    if type(body_limit).__name__ != BODY_LIMIT_LAYER:
        return stack
    context = getattr(body_limit, "app", None)
    handler = stack.handler
    if (
        not isinstance(context, RequestContextMiddleware)
        or handler is None
        or not inspect.iscoroutinefunction(handler)
    ):
        return stack
    # The app's handler of Exception, which FastAPI calls with a Request.
    context.unhandled = cast("UnhandledErrorHandler", handler)
    return context
