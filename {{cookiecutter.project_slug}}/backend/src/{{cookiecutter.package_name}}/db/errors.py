"""Failures of the database layer that callers are expected to handle."""

from __future__ import annotations

from typing import Literal

# Why a request was shed: the label of the http_requests_shed_total metric.
ShedCause = Literal[
    "pool_exhausted", "unreachable", "insufficient_resources", "statement_timeout", "busy"
]


class DatabaseUnavailableError(Exception):
    """No connection could be had in time, or the server went away mid-request.

    The HTTP layer answers 503 with Retry-After: the client may try again.
    """

    def __init__(
        self, reason: str, *, retry_after_seconds: float, cause: ShedCause = "busy"
    ) -> None:
        super().__init__(reason)
        self.retry_after_seconds = retry_after_seconds
        self.cause: ShedCause = cause


class SchemaRevisionUnreadableError(Exception):
    """The database answered, but the service's role may not read the schema's revision
    (alembic_version): the deployment's grants are wrong, not the request.

    The HTTP layer answers 503 without Retry-After: retrying helps only once an
    operator grants it (scripts/app_role.py does)."""
