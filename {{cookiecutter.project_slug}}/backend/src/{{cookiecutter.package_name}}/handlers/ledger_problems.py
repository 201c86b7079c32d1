"""The ledger's problem types (RFC 9457): one per domain error, and their OpenAPI docs."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from ..domain.accounts import AccountNotFoundError
from ..domain.errors import DomainError, InvalidValueError
from ..domain.idempotency import (
    IdempotencyKeyInUseError,
    IdempotencyKeyInvalidError,
    IdempotencyKeyMissingError,
    IdempotencyKeyReusedError,
)
{%- if cookiecutter.auth != "none" %}
from ..domain.ownership import NotAccountHolderError
{%- endif %}
from ..domain.pagination import InvalidCursorError
from ..domain.transfers import (
    BalanceLimitError,
    CurrencyMismatchError,
    InsufficientFundsError,
    SameAccountTransferError,
    TransferNotFoundError,
)
from .problems import InvalidParam, problem_response, problem_responses

# A client that gets 409 because its key is in use may retry this much later.
IN_USE_RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True, slots=True)
class ProblemType:
    status: int
    type: str
    title: str


INVALID_VALUE = ProblemType(422, "about:blank", HTTPStatus(422).phrase)
PROBLEM_TYPES: dict[type[DomainError], ProblemType] = {
    IdempotencyKeyMissingError: ProblemType(
        400, "/problems/idempotency-key-missing", "Idempotency-Key header missing"
    ),
    IdempotencyKeyInvalidError: ProblemType(
        400, "/problems/idempotency-key-invalid", "Idempotency-Key header invalid"
    ),
    InvalidCursorError: ProblemType(400, "/problems/invalid-cursor", "Invalid cursor"),
{%- if cookiecutter.auth != "none" %}
    NotAccountHolderError: ProblemType(
        403, "/problems/not-account-holder", "Not the account's holder"
    ),
{%- endif %}
    AccountNotFoundError: ProblemType(404, "/problems/account-not-found", "Account not found"),
    TransferNotFoundError: ProblemType(404, "/problems/transfer-not-found", "Transfer not found"),
    InsufficientFundsError: ProblemType(409, "/problems/insufficient-funds", "Insufficient funds"),
    IdempotencyKeyInUseError: ProblemType(
        409, "/problems/idempotency-key-in-use", "Idempotency-Key in use"
    ),
    SameAccountTransferError: ProblemType(
        422, "/problems/same-account-transfer", "Transfer to the same account"
    ),
    CurrencyMismatchError: ProblemType(422, "/problems/currency-mismatch", "Currency mismatch"),
    BalanceLimitError: ProblemType(422, "/problems/balance-limit", "Balance limit exceeded"),
    IdempotencyKeyReusedError: ProblemType(
        422, "/problems/idempotency-key-reused", "Idempotency-Key reused"
    ),
}


def problem_type_of(error: DomainError) -> ProblemType:
    for kind in type(error).__mro__:
        if kind in PROBLEM_TYPES:
            return PROBLEM_TYPES[kind]
    if isinstance(error, InvalidValueError):
        return INVALID_VALUE
    message = f"no problem type for {type(error).__name__}"
    raise LookupError(message)


def ledger_problem(request: Request, error: DomainError) -> JSONResponse:
    """The problem+json response for a domain error."""
    problem = problem_type_of(error)
    headers = None
    if isinstance(error, IdempotencyKeyInUseError):
        headers = {"Retry-After": str(IN_USE_RETRY_AFTER_SECONDS)}
    invalid_params = None
    if isinstance(error, InvalidValueError):
        invalid_params = [InvalidParam(name=f"body.{error.field}", reason=error.reason)]
    return problem_response(
        request,
        problem.status,
        detail=str(error),
        problem_type=problem.type,
        title=problem.title,
        headers=headers,
        invalid_params=invalid_params,
    )


def documented_problems(
    *errors: type[DomainError], statuses: tuple[int, ...] = ()
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for these errors (by status, naming each problem type)
    plus plain `statuses`: 422 for invalid input and 503 are on every route."""
    by_status: dict[int, list[str]] = {}
    for error in errors:
        problem = PROBLEM_TYPES[error]
        by_status.setdefault(problem.status, []).append(problem.type)
    responses = problem_responses(*sorted({*by_status, *statuses}))
    for status, types in by_status.items():
        responses[status]["description"] += ": " + ", ".join(f"`{kind}`" for kind in types)
    return responses
