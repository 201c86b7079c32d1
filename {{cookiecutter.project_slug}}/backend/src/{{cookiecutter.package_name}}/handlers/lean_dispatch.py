"""Lean routes answered at the ASGI level, before FastAPI's inner stack.

Per request, FastAPI's stack below the app's own middleware wraps the request in
Starlette's ExceptionMiddleware (a Request and a send wrapper), an AsyncExitStack,
its router (each route's regex, in order, until one matches; the scope updated through
a copy) and the route's handle. For a request a LeanRoute answers, none of them does
anything the lean path needs. `LeanDispatchMiddleware`, the innermost of the app's
middleware, finds the route from a table kept in step with the router's list (per method, the
routes in the router's order) and lets it answer, after setting in the scope what the
router and ExceptionMiddleware would have (the route, which the metrics label by,
endpoint, path_params, router, the app's exception handlers, which answer what the
route raises as they would in FastAPI's stack).

Everything else goes to FastAPI's stack unchanged: no route matched (404, 405, a slash
redirect), a route that is not a lean one or comes after a route of another kind
(a Mount, say: the router's order decides), a request FastAPI must answer
(dependency_overrides set, native telemetry on), and a request the lean path declines
(a missing or invalid parameter: FastAPI's 422), with its body replayed."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from starlette._utils import get_route_path
from starlette.convertors import Convertor
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from .lean_route import HANDED_OVER, LeanRoute

# One route of a method's list: its regex, its parameters' convertors, and the route if
# the lean path answers it (None: FastAPI's stack answers a request it matches first).
_Entry = tuple[re.Pattern[str] | None, dict[str, Convertor[Any]], LeanRoute | None]


class LeanDispatchMiddleware:
    """Lets a LeanRoute answer its requests directly; everything else goes on to `app`."""

    def __init__(self, app: ASGIApp, *, fastapi_app: FastAPI) -> None:
        # What it skips must be FastAPI's stack only: any middleware of the app's
        # below it would be skipped too.
        if not isinstance(app, ExceptionMiddleware):
            msg = "LeanDispatchMiddleware must be the app's innermost middleware (added first)"
            raise TypeError(msg)
        self.app = app
        self.fastapi_app = fastapi_app
        # The handlers FastAPI's ExceptionMiddleware holds (FastAPI reads the app's
        # when it builds its stack, at startup), as it sets them in the scope.
        self._handlers = (app._exception_handlers, app._status_handlers)
        # Prepared at the first request, again whenever the router's list changes.
        self._table: dict[str, list[_Entry]] = {}
        self._routes: list[BaseRoute] | None = None
        self._count = 0

    def _prepare(self, routes: list[BaseRoute]) -> dict[str, list[_Entry]]:
        table: dict[str, list[_Entry]] = {}
        # A route that may match any method (a Mount, a Route without methods): for
        # every method, whatever comes after it is FastAPI's router's to decide.
        anything: list[_Entry] = []
        for route in routes:
            if isinstance(route, WebSocketRoute):
                continue  # never matches an HTTP request
            if not isinstance(route, Route) or not route.methods:
                anything.append((None, {}, None))
                for entries in table.values():
                    entries.append((None, {}, None))
                continue
            lean = route if isinstance(route, LeanRoute) and route.lean else None
            for method in route.methods:
                entries = table.setdefault(method, list(anything))
                entries.append((route.path_regex, route.param_convertors, lean))
        table[""] = anything  # any other method
        self._table, self._routes, self._count = table, routes, len(routes)
        return table

    def _route(self, scope: Scope) -> tuple[LeanRoute, dict[str, Any]] | None:
        """The lean route that answers this request and its path parameters, if any."""
        routes = self.fastapi_app.router.routes
        table = self._table
        # Routes added, inserted or taken away (not one replaced in place): the
        # router's order again, as the router reads its list on every request.
        if routes is not self._routes or len(routes) != self._count:
            table = self._prepare(routes)
        entries = table.get(scope["method"]) or table[""]
        path = get_route_path(scope)
        for regex, convertors, route in entries:
            if regex is None:
                return None
            match = regex.match(path)
            if match is None:
                continue
            if route is None or route.fastapi_answers(scope):
                return None
            params = match.groupdict()
            for name, value in params.items():
                params[name] = convertors[name].convert(value)
            return route, params
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._route(scope) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        route, params = found
        # What the router and ExceptionMiddleware would have set.
        if "path_params" in scope:
            params = {**scope["path_params"], **params}
        scope["path_params"] = params
        scope["endpoint"] = route.endpoint
        scope["route"] = route
        scope.setdefault("router", self.fastapi_app.router)
        scope["starlette.exception_handlers"] = self._handlers
        replay = await route.answer(scope, receive, send)
        if replay is not None:
            # Declined (FastAPI's 422, say): FastAPI's stack answers, from the start.
            scope[HANDED_OVER] = True
            await self.app(scope, replay, send)
