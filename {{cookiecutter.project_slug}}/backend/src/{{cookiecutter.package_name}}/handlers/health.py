"""Liveness, readiness and version: what orchestrators and deploy checks poll."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ..db import schema
from ..db.errors import DatabaseUnavailableError
from .dependencies import DatabaseDep
from .problems import database_unavailable, problem_responses

router = APIRouter(tags=["health"])
# Any request, a probe's too, is refused 413 when its body exceeds http.max_body_bytes.
TOO_LARGE = 413


class Status(BaseModel):
    status: str


class VersionInfo(BaseModel):
    version: str
    schema_revision: str | None


@router.get("/health/live", response_model=Status, responses=problem_responses(TOO_LARGE))
async def live() -> Status:
    """The process is up and serving; never touches the database."""
    return Status(status="live")


@router.get("/health/ready", response_model=Status, responses=problem_responses(TOO_LARGE, 503))
async def ready(request: Request, database: DatabaseDep) -> Status | JSONResponse:
    """The database answers SELECT 1 within the ready timeout, or every connection
    is busy serving requests; 503 otherwise. A probe's 503 is not a shed request."""
    try:
        await database.ping()
    except DatabaseUnavailableError as error:
        return database_unavailable(request, error)
    return Status(status="ready")


@router.get("/version", response_model=VersionInfo, responses=problem_responses(TOO_LARGE, 503))
async def version_info(database: DatabaseDep) -> VersionInfo:
    """The running code's version and the schema revision the database is at; 503 while
    the database is unavailable, or its revision is unreadable (the service's role may
    not read alembic_version: a grant to fix)."""
    return VersionInfo(
        version=_package_version(), schema_revision=await schema.current_revision(database)
    )


def _package_version() -> str:
    try:
        return version("{{ cookiecutter.project_slug }}")
    except PackageNotFoundError:
        return "unknown"
