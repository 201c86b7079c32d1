"""Accounts: open one (with its opening ledger entry), read one, list them in id order."""

from __future__ import annotations

import asyncpg

from ..domain.accounts import Account, AccountId, NewAccount, Owner
{%- if cookiecutter.background_worker == "yes" %}
from ..domain.events import ACCOUNT_OPENED
{%- endif %}
from ..domain.money import Balance, Currency
from ..domain.pagination import Cursor, Page, page_of
{%- if cookiecutter.background_worker == "yes" %}
from . import outbox
{%- endif %}
from .pool import Database

LISTING = "accounts"
{%- set holder = ", holder" if cookiecutter.auth != "none" else "" %}
{%- set last = 4 if cookiecutter.auth != "none" else 3 %}

{% if cookiecutter.background_worker == "yes" -%}
# One statement, so the account, its opening entry and its event (pending, for the
# worker's relay) commit together. The payload, built from the row inserted, is what
# receivers get: add fields, never rename or drop one (test_outbox.py holds it);
# timestamps in UTC, always with microseconds. The event's id is the column's
# default, time-ordered (migration 0007); an idempotent replay does not run this
# statement.
{%- else -%}
# One statement, so the account and its opening entry commit together.
{%- endif %}
_INSERT = """
WITH account AS (
    INSERT INTO accounts (owner, currency, balance_minor{{ holder }})
    VALUES ($1, $2, $3{% if holder %}, $4{% endif %})
    RETURNING id, owner, currency, balance_minor, created_at{{ holder }}
), opening AS (
    INSERT INTO ledger_entries (account_id, kind, amount_minor)
    SELECT id, 'opening', balance_minor FROM account WHERE balance_minor > 0
{%- if cookiecutter.background_worker == "yes" %}
), event AS (
    INSERT INTO outbox_events (type, request_id, payload)
    SELECT ${{ last + 1 }}, ${{ last + 2 }}, jsonb_build_object(
        'account_id', id,
        'owner', owner,
        'currency', currency,
        'balance_minor', balance_minor,
        'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US+00:00')
    ) FROM account
{%- endif %}
)
SELECT id, owner, currency, balance_minor, created_at{{ holder }} FROM account
"""
{%- if cookiecutter.auth != "none" %}
_GET = "SELECT id, owner, currency, balance_minor, created_at, holder FROM accounts WHERE id = $1"
# A holder's accounts (index accounts_holder_id), or everyone's when $3 is NULL (admin).
_LIST = """
SELECT id, owner, currency, balance_minor, created_at, holder FROM accounts
WHERE id > $1 AND ($3::text IS NULL OR holder = $3) ORDER BY id LIMIT $2
"""
{%- else %}
_GET = "SELECT id, owner, currency, balance_minor, created_at FROM accounts WHERE id = $1"
_LIST = """
SELECT id, owner, currency, balance_minor, created_at FROM accounts
WHERE id > $1 ORDER BY id LIMIT $2
"""
{%- endif %}


def account_from(row: asyncpg.Record) -> Account:
    return Account(
        id=AccountId(row["id"]),
        owner=Owner(row["owner"]),
        currency=Currency(row["currency"]),
        balance=Balance(row["balance_minor"]),
        created_at=row["created_at"],
{%- if cookiecutter.auth != "none" %}
        holder=row["holder"],
{%- endif %}
    )


async def create_account(database: Database, new: NewAccount) -> Account:
    async with database.connection() as connection:
        (row,) = await connection.fetch(
{%- if cookiecutter.auth == "none" and cookiecutter.background_worker != "yes" %}
            _INSERT, new.owner.name, new.currency.code, new.opening_balance.minor_units
{%- else %}
            _INSERT,
            new.owner.name,
            new.currency.code,
            new.opening_balance.minor_units,
{%- if cookiecutter.auth != "none" %}
            new.holder,
{%- endif %}
{%- if cookiecutter.background_worker == "yes" %}
            ACCOUNT_OPENED,
            outbox.request_id(),
{%- endif %}
{%- endif %}
        )
    return account_from(row)


async def get_account(database: Database, account_id: AccountId) -> Account | None:
    async with database.connection() as connection:
        row = await connection.fetchrow(_GET, account_id)
    return None if row is None else account_from(row)


{% if cookiecutter.auth != "none" -%}
async def list_accounts(
    database: Database, cursor: Cursor, limit: int, holder: str | None
) -> Page[Account]:
    """`holder`'s accounts, or every account if None."""
    async with database.connection() as connection:
        rows = await connection.fetch(_LIST, cursor.after_id, limit + 1, holder)
{%- else -%}
async def list_accounts(database: Database, cursor: Cursor, limit: int) -> Page[Account]:
    async with database.connection() as connection:
        rows = await connection.fetch(_LIST, cursor.after_id, limit + 1)
{%- endif %}
    return page_of([account_from(row) for row in rows], limit, cursor, lambda account: account.id)
