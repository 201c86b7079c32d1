"""Parameters shared by the ledger's routes: row ids, and the page limit and cursor."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from ..domain.pagination import (
    CURSOR_MAX_LENGTH,
    CURSOR_PATTERN,
    DEFAULT_LIMIT,
    MAX_ID,
    MAX_LIMIT,
)

AccountIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="The account's id.")]
TransferIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="The transfer's id.")]
LimitQuery = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_LIMIT,
        description=f"Items per page, 1 to {MAX_LIMIT} ({DEFAULT_LIMIT} if omitted).",
    ),
]
CursorQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=CURSOR_MAX_LENGTH,
        pattern=CURSOR_PATTERN,
        description="The `next_cursor` of the previous page; omit it for the first page. "
        "Opaque: a cursor this listing did not return is a 400 `/problems/invalid-cursor`.",
    ),
]
NextCursor = Annotated[
    str | None,
    Field(description="Pass it as `cursor` to get the next page; null on the last page."),
]


def _json_integer(value: Any) -> Any:
    """JSON has one number type: 5 and 5.0 are the same integer to JSON Schema, while
    true and "5" are no integers at all. Pydantic's lax mode takes true and "5", its
    strict mode refuses 5.0; this takes exactly what the published schema allows."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        # The error a ValueError gives (type, message), without the ValueError: pydantic
        # keeps that in the error's context, and its traceback's frames hold the errors,
        # a reference cycle that kept each refused request's body until the garbage
        # collector's next pass.
        raise PydanticCustomError(
            "value_error", "Value error, {error}", {"error": "Input should be an integer"}
        )
    return value


# After the field's constraints in Annotated[int, Field(...), JSON_INTEGER], so that
# they still reach the OpenAPI schema as minimum and maximum.
JSON_INTEGER = BeforeValidator(_json_integer)
