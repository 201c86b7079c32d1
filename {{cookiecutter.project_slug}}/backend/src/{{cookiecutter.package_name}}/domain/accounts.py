"""Accounts: who owns one, in which currency, and what it holds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import NewType

from .errors import DomainError, InvalidValueError
from .money import MAX_MINOR_UNITS, Balance, Currency

AccountId = NewType("AccountId", int)

OWNER_MAX_LENGTH = 200
# Not blank, and no control characters: C0, DEL and C1 (U+0080-U+009F, U+0085
# included) corrupt logs, terminals and CSV exports (PostgreSQL rejects NUL
# outright); bidirectional embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069) make a name display as another. The HTTP schema publishes this
# same pattern, so what the schema allows is exactly what the domain accepts.
_REFUSED = r"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
OWNER_PATTERN = rf"^[^{_REFUSED}]*[^\s{_REFUSED}][^{_REFUSED}]*$"
_OWNER = re.compile(OWNER_PATTERN)


class AccountNotFoundError(DomainError):
    def __init__(self, account_id: AccountId) -> None:
        super().__init__(f"account {account_id} does not exist")
        self.account_id = account_id


@dataclass(frozen=True, slots=True)
class Owner:
    name: str

    @classmethod
    def parse(cls, text: str) -> Owner:
        if not 1 <= len(text) <= OWNER_MAX_LENGTH or not _OWNER.fullmatch(text):
            reason = (
                f"1 to {OWNER_MAX_LENGTH} characters, not blank, "
                "no control or bidirectional override characters"
            )
            raise InvalidValueError("owner", reason)
        return cls(text)


@dataclass(frozen=True, slots=True)
class NewAccount:
    """An account about to be opened. A positive opening balance is recorded as the
    account's first ledger entry, so its entries always sum to its balance."""

    owner: Owner
    currency: Currency
    opening_balance: Balance
{%- if cookiecutter.auth != "none" %}
    # The subject of the principal that opened it: who may read it and spend from it.
    holder: str
{%- endif %}


def open_account(owner: str, currency: str, opening_balance_minor: int{% if cookiecutter.auth != "none" %}, holder: str{% endif %}) -> NewAccount:
    if not 0 <= opening_balance_minor <= MAX_MINOR_UNITS:
        reason = f"must be from 0 to {MAX_MINOR_UNITS}"
        raise InvalidValueError("opening_balance_minor", reason)
{%- if cookiecutter.auth != "none" %}
    return NewAccount(
        Owner.parse(owner), Currency.parse(currency), Balance(opening_balance_minor), holder
    )
{%- else %}
    return NewAccount(Owner.parse(owner), Currency.parse(currency), Balance(opening_balance_minor))
{%- endif %}


@dataclass(frozen=True, slots=True)
class Account:
    id: AccountId
    owner: Owner
    currency: Currency
    balance: Balance
    created_at: datetime
{%- if cookiecutter.auth != "none" %}
    holder: str
{%- endif %}
