"""Accounts over HTTP: open one, read one, list them a page at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ..db import accounts
from ..domain.accounts import (
    OWNER_MAX_LENGTH,
    OWNER_PATTERN,
    Account,
    AccountId,
    AccountNotFoundError,
    open_account,
)
from ..domain.errors import DomainError
from ..domain.money import CURRENCY_CODES, MAX_MINOR_UNITS
{%- if cookiecutter.auth != "none" %}
from ..domain.ownership import listed_holder, may_read
{%- endif %}
from ..domain.pagination import DEFAULT_LIMIT, Cursor, InvalidCursorError
{%- if cookiecutter.auth != "none" %}
from .authentication import authentication_problems
{%- endif %}
from .dependencies import DatabaseDep
{%- if cookiecutter.auth != "none" %}
from .ledger_access import ReaderDep, WriterDep
{%- endif %}
from .ledger_problems import documented_problems, ledger_problem
from .parameters import JSON_INTEGER, AccountIdPath, CursorQuery, LimitQuery, NextCursor

{% if cookiecutter.auth != "none" -%}
router = APIRouter(prefix="/v1/accounts", tags=["accounts"], responses=authentication_problems())
{%- else -%}
router = APIRouter(prefix="/v1/accounts", tags=["accounts"])
{%- endif %}

Owner = Annotated[
    str,
    Field(
        min_length=1,
        max_length=OWNER_MAX_LENGTH,
        description="Who holds the account: not blank, no control or bidi-override characters.",
        examples=["Ada Lovelace"],
        # Published for clients; enforced by the domain, whose message is clearer.
        json_schema_extra={"pattern": OWNER_PATTERN},
    ),
]
CurrencyCode = Annotated[
    str,
    Field(
        description="ISO 4217 code of a currency with minor units.",
        examples=["EUR"],
        json_schema_extra={"enum": list(CURRENCY_CODES)},
    ),
]


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    owner: Owner
    currency: CurrencyCode
    opening_balance_minor: Annotated[
        int,
        Field(
            ge=0, le=MAX_MINOR_UNITS, description="Opening balance in minor units (cents for EUR)."
        ),
        JSON_INTEGER,
    ] = 0


class AccountOut(BaseModel):
    id: int
    owner: str
    currency: str
    balance_minor: Annotated[int, Field(description="Balance in minor units.")]
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            id=account.id,
            owner=account.owner.name,
            currency=account.currency.code,
            balance_minor=account.balance.minor_units,
            created_at=account.created_at,
        )


class AccountPage(BaseModel):
    items: list[AccountOut]
    next_cursor: NextCursor


CREATED: dict[str, Any] = {
    "headers": {
        "Location": {"description": "The new account's URL.", "schema": {"type": "string"}}
    },
    "links": {
        "GetAccount": {
            "operationId": "getAccount",
            "parameters": {"account_id": "$response.body#/id"},
        },
        "ListAccountTransfers": {
            "operationId": "listAccountTransfers",
            "parameters": {"account_id": "$response.body#/id"},
        },
    },
}


@router.post(
    "",
    status_code=201,
    response_model=AccountOut,
    operation_id="createAccount",
    responses={201: CREATED, **documented_problems(statuses=(400, 422, 503))},
)
{% if cookiecutter.auth != "none" -%}
async def create_account(
    body: AccountCreate,
    request: Request,
    response: Response,
    database: DatabaseDep,
    principal: WriterDep,
) -> AccountOut | Response:
    """Open an account, held by the caller; a positive opening balance is its first
    ledger entry."""
    try:
        new = open_account(body.owner, body.currency, body.opening_balance_minor, principal.subject)
{%- else -%}
async def create_account(
    body: AccountCreate, request: Request, response: Response, database: DatabaseDep
) -> AccountOut | Response:
    """Open an account; a positive opening balance is its first ledger entry."""
    try:
        new = open_account(body.owner, body.currency, body.opening_balance_minor)
{%- endif %}
    except DomainError as error:
        return ledger_problem(request, error)
    account = await accounts.create_account(database, new)
    response.headers["Location"] = f"{router.prefix}/{account.id}"
    return AccountOut.of(account)


@router.get(
    "",
    response_model=AccountPage,
    operation_id="listAccounts",
    responses=documented_problems(InvalidCursorError, statuses=(422, 503)),
)
async def list_accounts(
    request: Request,
    database: DatabaseDep,
{%- if cookiecutter.auth != "none" %}
    principal: ReaderDep,
{%- endif %}
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> AccountPage | Response:
{%- if cookiecutter.auth != "none" %}
    """The caller's accounts (every account, with the admin scope) in id order, a page
    at a time; rows added meanwhile never shift a page."""
{%- else %}
    """Accounts in id order, a page at a time; rows added meanwhile never shift a page."""
{%- endif %}
    try:
        start = Cursor.resume(cursor, accounts.LISTING)
    except DomainError as error:
        return ledger_problem(request, error)
{%- if cookiecutter.auth != "none" %}
    page = await accounts.list_accounts(database, start, limit, listed_holder(principal))
{%- else %}
    page = await accounts.list_accounts(database, start, limit)
{%- endif %}
    return AccountPage(
        items=[AccountOut.of(account) for account in page.items],
        next_cursor=page.next_cursor.encode() if page.next_cursor else None,
    )


@router.get(
    "/{account_id}",
    response_model=AccountOut,
    operation_id="getAccount",
    responses=documented_problems(AccountNotFoundError, statuses=(422, 503)),
)
{% if cookiecutter.auth != "none" -%}
async def get_account(
    account_id: AccountIdPath, request: Request, database: DatabaseDep, principal: ReaderDep
) -> AccountOut | Response:
    """One of the caller's accounts (any, with the admin scope) with its current balance;
    another's is not found."""
    account = await accounts.get_account(database, AccountId(account_id))
    if account is None or not may_read(principal, account.holder):
{%- else -%}
async def get_account(
    account_id: AccountIdPath, request: Request, database: DatabaseDep
) -> AccountOut | Response:
    """One account with its current balance."""
    account = await accounts.get_account(database, AccountId(account_id))
    if account is None:
{%- endif %}
        return ledger_problem(request, AccountNotFoundError(AccountId(account_id)))
    return AccountOut.of(account)
