"""ASGI scopes of answered requests, as the request context hands them to the metrics."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Route:
    """What FastAPI leaves in the scope as the matched route: its path template."""

    path: str


def routed_scope(route: str, method: str = "GET") -> dict[str, object]:
    """A request matched to the route template `route`."""
    return {"method": method, "path": route, "route": Route(route)}
