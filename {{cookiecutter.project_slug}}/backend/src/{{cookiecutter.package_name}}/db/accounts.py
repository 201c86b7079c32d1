"""Accounts: open one (with its opening ledger entry), read one, list them in id order."""

from __future__ import annotations

import asyncpg

from ..domain.accounts import Account, AccountId, NewAccount, Owner
{%- if cookiecutter.background_worker == "yes" %}
from ..domain.events import account_opened
{%- endif %}
from ..domain.money import Balance, Currency
from ..domain.pagination import Cursor, Page, page_of
{%- if cookiecutter.background_worker == "yes" %}
from . import outbox
{%- endif %}
from .pool import Database

LISTING = "accounts"

# One statement, so the account and its opening entry commit together.
_INSERT = """
WITH account AS (
    INSERT INTO accounts (owner, currency, balance_minor)
    VALUES ($1, $2, $3)
    RETURNING id, owner, currency, balance_minor, created_at
), opening AS (
    INSERT INTO ledger_entries (account_id, kind, amount_minor)
    SELECT id, 'opening', balance_minor FROM account WHERE balance_minor > 0
)
SELECT id, owner, currency, balance_minor, created_at FROM account
"""
_GET = "SELECT id, owner, currency, balance_minor, created_at FROM accounts WHERE id = $1"
_LIST = """
SELECT id, owner, currency, balance_minor, created_at FROM accounts
WHERE id > $1 ORDER BY id LIMIT $2
"""


def account_from(row: asyncpg.Record) -> Account:
    return Account(
        id=AccountId(row["id"]),
        owner=Owner(row["owner"]),
        currency=Currency(row["currency"]),
        balance=Balance(row["balance_minor"]),
        created_at=row["created_at"],
    )


async def create_account(database: Database, new: NewAccount) -> Account:
{%- if cookiecutter.background_worker == "yes" %}
    # The account.opened event commits with the account, or neither does.
    async with database.connection() as connection, connection.transaction():
        (row,) = await connection.fetch(
            _INSERT, new.owner.name, new.currency.code, new.opening_balance.minor_units
        )
        account = account_from(row)
        await outbox.record(connection, account_opened(account))
    return account
{%- else %}
    async with database.connection() as connection:
        (row,) = await connection.fetch(
            _INSERT, new.owner.name, new.currency.code, new.opening_balance.minor_units
        )
    return account_from(row)
{%- endif %}


async def get_account(database: Database, account_id: AccountId) -> Account | None:
    async with database.connection() as connection:
        row = await connection.fetchrow(_GET, account_id)
    return None if row is None else account_from(row)


async def list_accounts(database: Database, cursor: Cursor, limit: int) -> Page[Account]:
    async with database.connection() as connection:
        rows = await connection.fetch(_LIST, cursor.after_id, limit + 1)
    return page_of([account_from(row) for row in rows], limit, cursor, lambda account: account.id)
