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
as ServerErrorMiddleware did. Otherwise FastAPI's stack stays whole.
"""

from __future__ import annotations

from typing import cast

from fastapi import FastAPI
from fastapi._body_limit import AppBodyLimitMiddleware
from fastapi.telemetry._asgi import ExceptionTelemetryMiddleware
from starlette._utils import is_async_callable
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp

from .request_context import RequestContextMiddleware, UnhandledErrorHandler


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
    telemetry = stack.app
    if not isinstance(telemetry, ExceptionTelemetryMiddleware):
        return stack
    body_limit = telemetry.app
    if not isinstance(body_limit, AppBodyLimitMiddleware):
        return stack
    context = body_limit.app
    handler = stack.handler
    if (
        not isinstance(context, RequestContextMiddleware)
        or handler is None
        or not is_async_callable(handler)
    ):
        return stack
    # The app's handler of Exception, which FastAPI calls with a Request.
    context.unhandled = cast("UnhandledErrorHandler", handler)
    return context
