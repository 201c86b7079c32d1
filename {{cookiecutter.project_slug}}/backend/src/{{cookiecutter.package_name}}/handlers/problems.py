"""RFC 9457 problem details: every error this API returns has this shape."""

from __future__ import annotations

import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import Match
from structlog.typing import FilteringBoundLogger

from .. import metrics
from ..db.errors import DatabaseUnavailableError, SchemaRevisionUnreadableError

PROBLEM_MEDIA_TYPE = "application/problem+json"


class InvalidParam(BaseModel):
    name: str
    reason: str


class Problem(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    invalid_params: list[InvalidParam] | None = None


def problem_response(
    request: Request,
    status: int,
    *,
    detail: str | None = None,
    problem_type: str = "about:blank",
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    invalid_params: list[InvalidParam] | None = None,
) -> JSONResponse:
    problem = Problem(
        type=problem_type,
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        invalid_params=invalid_params,
    )
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem+json bodies for these statuses."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            # A reference, not Problem.model_json_schema(): that one carries its own
            # "#/$defs/…" references, which resolve against nothing in the OpenAPI document.
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


async def _http_exception(request: Request, exc: HTTPException) -> JSONResponse:
    detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None
    headers = exc.headers
    if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return problem_response(request, exc.status_code, detail=detail, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette's own Allow names only
    the methods of the first route matching the path (GET /items and POST /items
    are two routes)."""
    return [
        method
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI raises a body that is not JSON's error from the JSONDecodeError, whose
    # traceback holds the frame that holds this error: a reference cycle that kept the
    # request, its body among it, until the garbage collector's next pass. Nothing
    # reads the cause once the 422 is answered.
    exc.__cause__ = exc.__context__ = None
    params = [
        InvalidParam(name=".".join(str(part) for part in error["loc"]), reason=error["msg"])
        for error in exc.errors()
    ]
    return problem_response(
        request,
        422,
        detail="The request is not valid; see invalid_params.",
        invalid_params=params,
    )


def error_log() -> FilteringBoundLogger:
    """The errors' logger, of the logging configured now, not cached at first use: an
    app created again in the same process (tests) logs where it is told."""
    logger: FilteringBoundLogger = structlog.get_logger("errors")
    return logger


async def _database_unavailable(request: Request, exc: DatabaseUnavailableError) -> JSONResponse:
    error_log().warning("database unavailable", reason=str(exc), cause=exc.cause)
    metrics.REQUESTS_SHED.labels(cause=exc.cause).inc()
    return database_unavailable(request, exc)


def database_unavailable(request: Request, exc: DatabaseUnavailableError) -> JSONResponse:
    """503 + Retry-After: the client may try again."""
    return problem_response(
        request,
        503,
        problem_type="/problems/database-unavailable",
        title="Database unavailable",
        detail="The database is unavailable or busy; retry after the given delay.",
        headers={"Retry-After": str(math.ceil(exc.retry_after_seconds))},
    )


async def _schema_revision_unreadable(
    request: Request, exc: SchemaRevisionUnreadableError
) -> JSONResponse:
    """An operator's to fix, not the client's: the server's reason (the table and the
    privilege) goes to the log, without a traceback, which would only show this line."""
    error_log().error("schema revision unreadable", reason=str(exc))
    return problem_response(
        request,
        503,
        problem_type="/problems/schema-revision-unreadable",
        title="Schema revision unreadable",
        detail="The database's schema revision cannot be read; the service's log says why.",
    )


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    """Only errors that escape RequestLimitsMiddleware, which answers the others: the
    request context answers these with it, through its headers (or, while FastAPI's
    outer layers stay, ServerErrorMiddleware does, outside them)."""
    error_log().error("unhandled exception", exc_info=exc)
    return problem_response(request, 500, detail="An unexpected error occurred.")


def register_problem_handlers(app: FastAPI) -> None:
    app.exception_handler(HTTPException)(_http_exception)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(DatabaseUnavailableError)(_database_unavailable)
    app.exception_handler(SchemaRevisionUnreadableError)(_schema_revision_unreadable)
    app.exception_handler(Exception)(_unhandled)
