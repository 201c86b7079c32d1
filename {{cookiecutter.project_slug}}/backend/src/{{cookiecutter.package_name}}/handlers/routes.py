"""The handler modules' routes, added to the app's own router."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from .lean_route import LeanRoute

# What add_api_route takes, each read back from the declared route under the same name.
_ROUTE_FIELDS = tuple(
    name
    for name in inspect.signature(APIRouter.add_api_route).parameters
    if name not in {"self", "path", "endpoint", "route_class_override"}
)


def add_routes(router: APIRouter, routes: Iterable[BaseRoute]) -> None:
    """Adds each route as if it had been declared on `router` (the app's own).

    Not `include_router`: FastAPI matches an included router's routes once to choose
    it and again to handle the request. Nor the declared routes themselves in the
    app's list: a route keeps the router it was declared on as its source of
    dependency overrides, so the app's `dependency_overrides` would not reach it.

    A plain APIRoute becomes a LeanRoute (its lean path, where it allows one); a
    route of another class keeps it."""
    for route in routes:
        if not isinstance(route, APIRoute):
            router.routes.append(route)
            continue
        fields: dict[str, Any] = {name: getattr(route, name) for name in _ROUTE_FIELDS}
        route_class = LeanRoute if type(route) is APIRoute else type(route)
        router.add_api_route(route.path, route.endpoint, route_class_override=route_class, **fields)
