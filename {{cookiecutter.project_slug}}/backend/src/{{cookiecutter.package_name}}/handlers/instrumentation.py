"""The request metrics RequestContextMiddleware records (metrics.py serves them).

Hand-written rather than a FastAPI instrumentation package: FastAPI already puts
the matched route in the scope ("route"), so labelling by route template costs a
dictionary lookup here, where such packages match every route again per request,
in a middleware layer of their own.
"""

from __future__ import annotations

from starlette.types import Scope

from .. import metrics


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # FastAPI serves /openapi.json as a plain Starlette route, which leaves no "route"
    # in the scope; its path has no parameters, so it is its own template.
    if scope["path"] == getattr(scope.get("app"), "openapi_url", None):
        return str(scope["path"])
    return metrics.UNMATCHED_ROUTE


def record_request(scope: Scope, status: int, seconds: float) -> None:
    """Latency and status of one answered request (RequestContextMiddleware calls this)."""
    route, method = _route_template(scope), scope["method"]
    metrics.REQUEST_DURATION.labels(method, route).observe(seconds)
    metrics.REQUESTS.labels(method, route, str(status)).inc()
