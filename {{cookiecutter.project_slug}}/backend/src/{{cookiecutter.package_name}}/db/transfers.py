"""Transfers: one transaction locks both accounts in id order, applies the domain's
plan, and writes the transfer with its debit and credit entries."""

from __future__ import annotations

import asyncpg

from ..domain.accounts import AccountId
{%- if cookiecutter.background_worker == "yes" %}
from ..domain.events import TRANSFER_COMPLETED
{%- endif %}
from ..domain.money import Amount, Balance, Currency
from ..domain.pagination import Cursor, Page, page_of
from ..domain.transfers import (
    AccountState,
    Transfer,
    TransferId,
    TransferRequest,
    plan_transfer,
)
{%- if cookiecutter.background_worker == "yes" %}
from . import outbox
{%- endif %}
from .pool import Database, PooledConnection

LISTING = "transfers"

# Always in id order: two transfers between the same accounts, in either
# direction, then queue for the same first lock instead of deadlocking. Two scalar
# parameters: PostgreSQL costs `id = ANY($1::bigint[])` as a hundred ids in a
# generic plan, so it planned that statement again on every call.
_LOCK_ACCOUNTS = """
SELECT id, currency, balance_minor{% if cookiecutter.auth != "none" %}, holder{% endif %} FROM accounts
WHERE id IN ($1, $2) ORDER BY id FOR UPDATE
"""
{%- if cookiecutter.background_worker == "yes" %}
# One statement for the writes: both balances, the transfer, its two entries and its
# event ($11, with the request's id $12), pending for the worker's relay. The payload,
# built from the row inserted, is what receivers get: add fields, never rename or
# drop one (test_outbox.py holds it). Timestamps in UTC, always with microseconds.
# The event's id is the column's default, time-ordered (migration 0007); an
# idempotent replay does not run this statement.
{%- else %}
# One statement for the writes: both balances, the transfer and its two entries.
{%- endif %}
# The two entries as scalar parameters in VALUES ($1..$4 the debit's and credit's
# account and signed amount, $9/$10 their kinds), not unnest() of arrays: the planner
# costs unnest($1::bigint[]) at 100 rows in a generic plan and 2 in a custom one, so
# it re-planned the whole statement on every call. With VALUES the cached plan is
# used: PostgreSQL spends about a fifth less CPU on a transfer (README, outbox).
_WRITE = """
WITH moved AS (
    UPDATE accounts AS account SET balance_minor = account.balance_minor + change.amount
    FROM (VALUES ($1::bigint, $2::bigint), ($3::bigint, $4::bigint)) AS change (account_id, amount)
    WHERE account.id = change.account_id
), transfer AS (
    INSERT INTO transfers (from_account_id, to_account_id, amount_minor, currency)
    VALUES ($5, $6, $7, $8)
    RETURNING id, from_account_id, to_account_id, amount_minor, currency, created_at
), entries AS (
    INSERT INTO ledger_entries (account_id, transfer_id, kind, amount_minor)
    SELECT entry.account_id, transfer.id, entry.kind, entry.amount
    FROM transfer,
        (VALUES ($1, $9::text, $2), ($3, $10::text, $4)) AS entry (account_id, kind, amount)
{%- if cookiecutter.background_worker == "yes" %}
), event AS (
    INSERT INTO outbox_events (type, request_id, payload)
    SELECT $11, $12, jsonb_build_object(
        'transfer_id', id,
        'from_account_id', from_account_id,
        'to_account_id', to_account_id,
        'amount_minor', amount_minor,
        'currency', currency,
        'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US+00:00')
    ) FROM transfer
{%- endif %}
)
SELECT id, from_account_id, to_account_id, amount_minor, currency, created_at FROM transfer
"""
{% if cookiecutter.auth != "none" -%}
# Only if $2 holds one of its two accounts; anyone's when $2 is NULL (admin).
_GET = """
SELECT t.id, t.from_account_id, t.to_account_id, t.amount_minor, t.currency, t.created_at
FROM transfers AS t
JOIN accounts AS source ON source.id = t.from_account_id
JOIN accounts AS destination ON destination.id = t.to_account_id
WHERE t.id = $1 AND ($2::text IS NULL OR $2 IN (source.holder, destination.holder))
"""
_ACCOUNT_VISIBLE = "SELECT 1 FROM accounts WHERE id = $1 AND ($2::text IS NULL OR holder = $2)"
{%- else -%}
_GET = """
SELECT id, from_account_id, to_account_id, amount_minor, currency, created_at
FROM transfers WHERE id = $1
"""
{%- endif %}
# Through the account's ledger entries (indexed by account, transfer), which list
# each of its transfers once, whichever side the account was on.
_LIST_FOR_ACCOUNT = """
SELECT t.id, t.from_account_id, t.to_account_id, t.amount_minor, t.currency, t.created_at
FROM ledger_entries AS e JOIN transfers AS t ON t.id = e.transfer_id
WHERE e.account_id = $1 AND e.transfer_id > $2
ORDER BY e.transfer_id LIMIT $3
"""


def transfer_from(row: asyncpg.Record) -> Transfer:
    return Transfer(
        id=TransferId(row["id"]),
        source=AccountId(row["from_account_id"]),
        destination=AccountId(row["to_account_id"]),
        amount=Amount(row["amount_minor"]),
        currency=Currency(row["currency"]),
        created_at=row["created_at"],
    )


async def lock_accounts(
    connection: PooledConnection, first: AccountId, second: AccountId
) -> dict[AccountId, AccountState]:
    rows = await connection.fetch(_LOCK_ACCOUNTS, first, second)
    return {
        AccountId(row["id"]): AccountState(
{%- if cookiecutter.auth != "none" %}
            AccountId(row["id"]),
            Currency(row["currency"]),
            Balance(row["balance_minor"]),
            row["holder"],
{%- else %}
            AccountId(row["id"]), Currency(row["currency"]), Balance(row["balance_minor"])
{%- endif %}
        )
        for row in rows
    }


async def create_transfer(connection: PooledConnection, request: TransferRequest) -> Transfer:
    """Within the caller's transaction: raises the domain's TransferRejectedError
    (having written nothing) when a rule refuses the transfer."""
    accounts = await lock_accounts(connection, request.source, request.destination)
    plan = plan_transfer(request, accounts)
    debit, credit = plan.debit, plan.credit
    (row,) = await connection.fetch(
        _WRITE,
        debit.account_id,
        debit.amount_minor,
        credit.account_id,
        credit.amount_minor,
        request.source,
        request.destination,
        request.amount.minor_units,
        plan.currency.code,
        debit.kind,
        credit.kind,
{%- if cookiecutter.background_worker == "yes" %}
        TRANSFER_COMPLETED,
        outbox.request_id(),
{%- endif %}
    )
    return transfer_from(row)


{% if cookiecutter.auth != "none" -%}
async def get_transfer(
    database: Database, transfer_id: TransferId, viewer: str | None
) -> Transfer | None:
    """The transfer, if `viewer` holds one of its accounts (any, for None)."""
    async with database.connection() as connection:
        row = await connection.fetchrow(_GET, transfer_id, viewer)
    return None if row is None else transfer_from(row)


async def list_account_transfers(
    database: Database, account_id: AccountId, cursor: Cursor, limit: int, viewer: str | None
) -> Page[Transfer] | None:
    """The account's transfers in id order, or None if the account does not exist or
    `viewer` does not hold it (None: any account)."""
    async with database.connection() as connection:
        if await connection.fetchval(_ACCOUNT_VISIBLE, account_id, viewer) is None:
            return None
{%- else -%}
async def get_transfer(database: Database, transfer_id: TransferId) -> Transfer | None:
    async with database.connection() as connection:
        row = await connection.fetchrow(_GET, transfer_id)
    return None if row is None else transfer_from(row)


async def list_account_transfers(
    database: Database, account_id: AccountId, cursor: Cursor, limit: int
) -> Page[Transfer] | None:
    """The account's transfers in id order, or None if the account does not exist."""
    async with database.connection() as connection:
        if await connection.fetchval("SELECT 1 FROM accounts WHERE id = $1", account_id) is None:
            return None
{%- endif %}
        rows = await connection.fetch(_LIST_FOR_ACCOUNT, account_id, cursor.after_id, limit + 1)
    return page_of([transfer_from(row) for row in rows], limit, cursor, lambda t: t.id)
