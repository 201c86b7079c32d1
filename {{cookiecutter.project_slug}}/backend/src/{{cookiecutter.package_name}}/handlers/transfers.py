"""Transfers over HTTP: create one (idempotently), read one, list an account's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ..db import idempotency, transfers
from ..db.pool import PooledConnection
from ..domain.accounts import AccountId, AccountNotFoundError
from ..domain.errors import DomainError
from ..domain.idempotency import (
    KEY_MAX_LENGTH,
    KEY_PATTERN,
    IdempotencyKey,
    IdempotencyKeyInUseError,
    IdempotencyKeyInvalidError,
    IdempotencyKeyMissingError,
    IdempotencyKeyReusedError,
    IdempotentResult,
    StoredResponse,
    fingerprint,
)
from ..domain.money import MAX_MINOR_UNITS, Amount
{%- if cookiecutter.auth != "none" %}
from ..domain.ownership import NotAccountHolderError, listed_holder
{%- endif %}
from ..domain.pagination import DEFAULT_LIMIT, MAX_ID, Cursor, InvalidCursorError
from ..domain.transfers import (
    BalanceLimitError,
    CurrencyMismatchError,
    InsufficientFundsError,
    SameAccountTransferError,
    Transfer,
    TransferId,
    TransferNotFoundError,
    TransferRejectedError,
    TransferRequest,
)
{%- if cookiecutter.auth != "none" %}
from .authentication import authentication_problems
{%- endif %}
from .dependencies import DatabaseDep, SettingsDep
{%- if cookiecutter.auth != "none" %}
from .ledger_access import ReaderDep, WriterDep
{%- endif %}
from .ledger_problems import documented_problems, ledger_problem
from .parameters import (
    JSON_INTEGER,
    AccountIdPath,
    CursorQuery,
    LimitQuery,
    NextCursor,
    TransferIdPath,
)

router = APIRouter(tags=["transfers"]{% if cookiecutter.auth != "none" %}, responses=authentication_problems(){% endif %})

IDEMPOTENCY_SCOPE = "POST /v1/transfers"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
JSON = "application/json"


class TransferCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    from_account_id: Annotated[
        int, Field(ge=1, le=MAX_ID, description="The account debited."), JSON_INTEGER
    ]
    to_account_id: Annotated[
        int, Field(ge=1, le=MAX_ID, description="The account credited."), JSON_INTEGER
    ]
    amount_minor: Annotated[
        int,
        Field(ge=1, le=MAX_MINOR_UNITS, description="Amount in minor units, above 0."),
        JSON_INTEGER,
    ]


class TransferOut(BaseModel):
    id: int
    from_account_id: int
    to_account_id: int
    amount_minor: int
    currency: str
    created_at: datetime

    @classmethod
    def of(cls, transfer: Transfer) -> TransferOut:
        return cls(
            id=transfer.id,
            from_account_id=transfer.source,
            to_account_id=transfer.destination,
            amount_minor=transfer.amount.minor_units,
            currency=transfer.currency.code,
            created_at=transfer.created_at,
        )


class TransferPage(BaseModel):
    items: list[TransferOut]
    next_cursor: NextCursor


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


# Read from the request by hand (so a missing key is our 400, not a generic 422),
# hence documented here rather than inferred from the signature.
IDEMPOTENCY_KEY_PARAMETER = {
    "name": IDEMPOTENCY_KEY_HEADER,
    "in": "header",
    "required": True,
    "description": "A unique key per transfer (a UUID, say); retry with the same key and "
    "body to get the first response again. 1 to 255 printable ASCII characters.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": KEY_MAX_LENGTH,
        "pattern": KEY_PATTERN,
    },
}
CREATE_RESPONSES: dict[int | str, dict[str, Any]] = documented_problems(
    IdempotencyKeyMissingError,
    IdempotencyKeyInvalidError,
    AccountNotFoundError,
    InsufficientFundsError,
    IdempotencyKeyInUseError,
    SameAccountTransferError,
    CurrencyMismatchError,
    BalanceLimitError,
    IdempotencyKeyReusedError,
{%- if cookiecutter.auth != "none" %}
    NotAccountHolderError,
{%- endif %}
    statuses=(503,),
)
CREATE_RESPONSES[201] = {
    "headers": {
        "Location": _header("The new transfer's URL."),
        "Idempotent-Replayed": _header("`true` when this is the stored response to a retry."),
    },
    "links": {
        "GetTransfer": {
            "operationId": "getTransfer",
            "parameters": {"transfer_id": "$response.body#/id"},
        },
    },
}
CREATE_RESPONSES[409]["headers"] = {
    "Retry-After": _header("Seconds to wait when the key is in use."),
}
CREATE_RESPONSES[503]["headers"] = {"Retry-After": _header("Seconds to wait.")}


@router.post(
    "/v1/transfers",
    status_code=201,
    response_model=TransferOut,
    operation_id="createTransfer",
    responses=CREATE_RESPONSES,
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_PARAMETER]},
)
{% if cookiecutter.auth != "none" -%}
async def create_transfer(
    body: TransferCreate,
    request: Request,
    database: DatabaseDep,
    settings: SettingsDep,
    principal: WriterDep,
) -> Response:
{%- else -%}
async def create_transfer(
    body: TransferCreate, request: Request, database: DatabaseDep, settings: SettingsDep
) -> Response:
{%- endif %}
    """Move money between two accounts of one currency, exactly once per Idempotency-Key.

    The same key with the same body replays the first response (status and body,
    byte for byte, with `Idempotent-Replayed: true`), including a refusal such as
    insufficient funds; with another body it is a 422. Requests that fail
    validation store nothing, so they can be corrected and sent with the same key.
{%- if cookiecutter.auth != "none" %}
    Money moves only out of the caller's own accounts, to any account; each caller's
    keys are its own (two callers may use the same key).
{%- endif %}
    """
    try:
        key = IdempotencyKey.parse(request.headers.get(IDEMPOTENCY_KEY_HEADER))
        transfer_request = TransferRequest(
            AccountId(body.from_account_id),
            AccountId(body.to_account_id),
            Amount(body.amount_minor),
{%- if cookiecutter.auth != "none" %}
            principal.subject,
{%- endif %}
        )
    except DomainError as error:
        return ledger_problem(request, error)

    async def transfer_once(connection: PooledConnection) -> StoredResponse:
        try:
            transfer = await transfers.create_transfer(connection, transfer_request)
        except TransferRejectedError as error:
            refusal = ledger_problem(request, error)
            return StoredResponse(
                refusal.status_code, refusal.media_type or JSON, bytes(refusal.body)
            )
        created = TransferOut.of(transfer).model_dump_json().encode()
        return StoredResponse(201, JSON, created, location=f"/v1/transfers/{transfer.id}")

    try:
        result = await idempotency.run_once(
            database,
            {% if cookiecutter.auth != "none" %}f"{IDEMPOTENCY_SCOPE} {principal.subject}"{% else %}IDEMPOTENCY_SCOPE{% endif %},
            key,
            fingerprint(body.model_dump()),
            transfer_once,
            retention_seconds=settings.ledger.idempotency.retention_seconds,
            attempts=settings.ledger.transaction_attempts,
        )
    except DomainError as error:
        return ledger_problem(request, error)
    return _response_of(result)


def _response_of(result: IdempotentResult) -> Response:
    stored = result.response
    headers = {"Location": stored.location} if stored.location else {}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(stored.body, stored.status, headers, media_type=stored.content_type)


@router.get(
    "/v1/transfers/{transfer_id}",
    response_model=TransferOut,
    operation_id="getTransfer",
    responses=documented_problems(TransferNotFoundError, statuses=(422, 503)),
)
{% if cookiecutter.auth != "none" -%}
async def get_transfer(
    transfer_id: TransferIdPath, request: Request, database: DatabaseDep, principal: ReaderDep
) -> TransferOut | Response:
    """One transfer from or to one of the caller's accounts (any, with the admin scope)."""
    viewer = listed_holder(principal)
    transfer = await transfers.get_transfer(database, TransferId(transfer_id), viewer)
{%- else -%}
async def get_transfer(
    transfer_id: TransferIdPath, request: Request, database: DatabaseDep
) -> TransferOut | Response:
    """One transfer."""
    transfer = await transfers.get_transfer(database, TransferId(transfer_id))
{%- endif %}
    if transfer is None:
        return ledger_problem(request, TransferNotFoundError(TransferId(transfer_id)))
    return TransferOut.of(transfer)


@router.get(
    "/v1/accounts/{account_id}/transfers",
    response_model=TransferPage,
    operation_id="listAccountTransfers",
    responses=documented_problems(AccountNotFoundError, InvalidCursorError, statuses=(422, 503)),
)
async def list_account_transfers(
    account_id: AccountIdPath,
    request: Request,
    database: DatabaseDep,
{%- if cookiecutter.auth != "none" %}
    *,
    principal: ReaderDep,
{%- endif %}
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> TransferPage | Response:
    """The account's transfers, sent or received, in id order, a page at a time."""
    try:
        start = Cursor.resume(cursor, transfers.LISTING)
    except DomainError as error:
        return ledger_problem(request, error)
{%- if cookiecutter.auth != "none" %}
    page = await transfers.list_account_transfers(
        database, AccountId(account_id), start, limit, listed_holder(principal)
    )
{%- else %}
    page = await transfers.list_account_transfers(database, AccountId(account_id), start, limit)
{%- endif %}
    if page is None:
        return ledger_problem(request, AccountNotFoundError(AccountId(account_id)))
    return TransferPage(
        items=[TransferOut.of(transfer) for transfer in page.items],
        next_cursor=page.next_cursor.encode() if page.next_cursor else None,
    )
