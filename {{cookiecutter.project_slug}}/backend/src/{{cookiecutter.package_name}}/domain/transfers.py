"""Transfers: the rules that decide whether money may move, and the two ledger
entries (a debit and a credit) that record each move."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NewType

from .accounts import AccountId, AccountNotFoundError
from .errors import DomainError
from .money import Amount, Balance, Currency
{%- if cookiecutter.auth != "none" %}
from .ownership import ensure_may_debit
{%- endif %}

TransferId = NewType("TransferId", int)


class TransferNotFoundError(DomainError):
    def __init__(self, transfer_id: TransferId) -> None:
        super().__init__(f"transfer {transfer_id} does not exist")


class SameAccountTransferError(DomainError):
    def __init__(self, account_id: AccountId) -> None:
        super().__init__(f"a transfer needs two different accounts; both are {account_id}")


class TransferRejectedError(DomainError):
    """The request was well formed, but the accounts as they are now refuse it."""


class TransferAccountNotFoundError(TransferRejectedError, AccountNotFoundError):
    """An account named in a transfer does not exist."""


class CurrencyMismatchError(TransferRejectedError):
    def __init__(self, source: AccountState, destination: AccountState) -> None:
        super().__init__(
            f"account {source.id} holds {source.currency.code} but account "
            f"{destination.id} holds {destination.currency.code}; transfers need one currency"
        )


class InsufficientFundsError(TransferRejectedError):
    def __init__(self, source: AccountState, amount: Amount) -> None:
        super().__init__(
            f"account {source.id} holds {source.balance.minor_units} minor units; "
            f"the transfer needs {amount.minor_units}"
        )


class BalanceLimitError(TransferRejectedError):
    def __init__(self, destination: AccountState) -> None:
        super().__init__(f"account {destination.id} cannot hold more without overflowing")


@dataclass(frozen=True, slots=True)
class TransferRequest:
    source: AccountId
    destination: AccountId
    amount: Amount
{%- if cookiecutter.auth != "none" %}
    # The subject asking: it must hold the source account.
    requested_by: str
{%- endif %}

    def __post_init__(self) -> None:
        if self.source == self.destination:
            raise SameAccountTransferError(self.source)


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account as read under lock, inside the transfer's transaction."""

    id: AccountId
    currency: Currency
    balance: Balance
{%- if cookiecutter.auth != "none" %}
    holder: str
{%- endif %}


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the ledger: a signed change to one account's balance."""

    account_id: AccountId
    kind: Literal["debit", "credit"]
    amount_minor: int


@dataclass(frozen=True, slots=True)
class TransferPlan:
    request: TransferRequest
    currency: Currency
    debit: Entry
    credit: Entry


def plan_transfer(
    request: TransferRequest, accounts: Mapping[AccountId, AccountState]
) -> TransferPlan:
    """Check every rule against the locked accounts; the plan's entries sum to zero."""
    source = _require(accounts, request.source)
    destination = _require(accounts, request.destination)
{%- if cookiecutter.auth != "none" %}
    ensure_may_debit(request.requested_by, source.id, source.holder)
{%- endif %}
    if source.currency != destination.currency:
        raise CurrencyMismatchError(source, destination)
    if not source.balance.covers(request.amount):
        raise InsufficientFundsError(source, request.amount)
    if not destination.balance.has_room_for(request.amount):
        raise BalanceLimitError(destination)
    moved = request.amount.minor_units
    return TransferPlan(
        request=request,
        currency=source.currency,
        debit=Entry(source.id, "debit", -moved),
        credit=Entry(destination.id, "credit", moved),
    )


def _require(accounts: Mapping[AccountId, AccountState], account_id: AccountId) -> AccountState:
    if account_id not in accounts:
        raise TransferAccountNotFoundError(account_id)
    return accounts[account_id]


@dataclass(frozen=True, slots=True)
class Transfer:
    id: TransferId
    source: AccountId
    destination: AccountId
    amount: Amount
    currency: Currency
    created_at: datetime
