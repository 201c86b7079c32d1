"""The ledger's ownership rules, without HTTP or a database."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.domain.accounts import AccountId
from {{ cookiecutter.package_name }}.domain.money import Amount, Balance, Currency
from {{ cookiecutter.package_name }}.domain.ownership import (
    ADMIN_SCOPE,
    NotAccountHolderError,
    listed_holder,
    may_read,
)
from {{ cookiecutter.package_name }}.domain.transfers import (
    AccountState,
    TransferRequest,
    plan_transfer,
)
from {{ cookiecutter.package_name }}.principal import Principal

ALICE = Principal("alice", frozenset({"ledger:read"}))
ADMIN = Principal("root", frozenset({"ledger:read", ADMIN_SCOPE}))
EUR = Currency("EUR")


def test_a_principal_reads_only_its_own_accounts_and_an_admin_reads_all() -> None:
    assert may_read(ALICE, "alice")
    assert not may_read(ALICE, "bob")
    assert not may_read(ALICE, "")
    assert may_read(ADMIN, "bob")
    assert listed_holder(ALICE) == "alice"
    assert listed_holder(ADMIN) is None


def accounts(source_holder: str) -> dict[AccountId, AccountState]:
    return {
        AccountId(1): AccountState(AccountId(1), EUR, Balance(100), source_holder),
        AccountId(2): AccountState(AccountId(2), EUR, Balance(0), "bob"),
    }


def test_money_moves_from_ones_own_account_to_anyones() -> None:
    request = TransferRequest(AccountId(1), AccountId(2), Amount(40), "alice")
    plan = plan_transfer(request, accounts("alice"))
    assert (plan.debit.amount_minor, plan.credit.amount_minor) == (-40, 40)


@pytest.mark.parametrize("requested_by", ["bob", "root", ""])
def test_nobody_but_the_holder_moves_money_out(requested_by: str) -> None:
    request = TransferRequest(AccountId(1), AccountId(2), Amount(40), requested_by)
    with pytest.raises(NotAccountHolderError, match="holder of account 1"):
        plan_transfer(request, accounts("alice"))
