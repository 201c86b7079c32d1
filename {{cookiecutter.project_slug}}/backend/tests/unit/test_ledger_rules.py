"""The ledger's rules, as pure domain code: money, accounts, transfers."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.domain.accounts import (
    OWNER_MAX_LENGTH,
    AccountId,
    AccountNotFoundError,
    Owner,
    open_account,
)
from {{ cookiecutter.package_name }}.domain.errors import InvalidValueError
from {{ cookiecutter.package_name }}.domain.money import (
    CURRENCY_CODES,
    MAX_MINOR_UNITS,
    Amount,
    Balance,
    Currency,
)
from {{ cookiecutter.package_name }}.domain.transfers import (
    AccountState,
    BalanceLimitError,
    CurrencyMismatchError,
    InsufficientFundsError,
    SameAccountTransferError,
    TransferRejectedError,
    TransferRequest,
    plan_transfer,
)

EUR = Currency("EUR")
SOURCE, DESTINATION = AccountId(1), AccountId(2)
{%- if cookiecutter.auth != "none" %}
# The subject holding the accounts and asking for the transfers (test_ownership_rules.py
# covers the others).
BY: tuple[str] = ("alice",)
{%- else %}
BY: tuple[()] = ()
{%- endif %}


@pytest.mark.parametrize("code", ["EUR", "USD", "JPY", "KWD", "CHF"])
def test_iso_currencies_with_minor_units_are_accepted(code: str) -> None:
    assert Currency.parse(code) == Currency(code)


@pytest.mark.parametrize(
    "code",
    ["eur", "EURO", "", "ABC", "XAU", "XTS", "XXX", " EUR", "DEM"],
    ids=["lowercase", "long", "empty", "unknown", "gold", "testing", "none", "space", "withdrawn"],
)
def test_other_currency_codes_are_refused(code: str) -> None:
    with pytest.raises(InvalidValueError, match=r"currency: .* ISO 4217") as refused:
        Currency.parse(code)
    assert refused.value.field == "currency"


def test_currency_codes_are_sorted_three_letter_codes() -> None:
    assert list(CURRENCY_CODES) == sorted(CURRENCY_CODES)
    assert all(len(code) == 3 and code.isupper() for code in CURRENCY_CODES)
    assert {"EUR", "USD", "JPY"} <= set(CURRENCY_CODES)


@pytest.mark.parametrize("minor_units", [0, -1, MAX_MINOR_UNITS + 1])
def test_an_amount_is_positive_and_bounded(minor_units: int) -> None:
    with pytest.raises(InvalidValueError, match="amount_minor"):
        Amount(minor_units)


@pytest.mark.parametrize("minor_units", [-1, MAX_MINOR_UNITS + 1])
def test_a_balance_is_never_negative_nor_unbounded(minor_units: int) -> None:
    with pytest.raises(InvalidValueError, match="balance_minor"):
        Balance(minor_units)


def test_a_balance_covers_amounts_up_to_itself() -> None:
    assert Balance(500).covers(Amount(500))
    assert not Balance(500).covers(Amount(501))
    assert Balance(MAX_MINOR_UNITS - 1).has_room_for(Amount(1))
    assert not Balance(MAX_MINOR_UNITS).has_room_for(Amount(1))


@pytest.mark.parametrize(
    "name", ["Ada Lovelace", "x", "Zoë Ångström 李", " padded ", "o" * OWNER_MAX_LENGTH]
)
def test_owner_accepts_any_visible_name(name: str) -> None:
    assert Owner.parse(name).name == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        " ",
        "\t\n",
        "Ada\x00",
        "Ada\nLovelace",
        "bell\x07",
        "del\x7f",
        "csi\x9b31m",
        "next-line\x85",
        "pad\x80",
        "apc\x9f",
        "evil\u202etxt.exe",
        "embed\u202a",
        "isolate\u2066x\u2069",
        "o" * (OWNER_MAX_LENGTH + 1),
    ],
    ids=[
        *("empty", "blank", "whitespace", "nul", "newline", "bell", "delete"),
        *("c1-csi", "c1-next-line", "c1-first", "c1-last"),
        *("bidi-override", "bidi-embedding", "bidi-isolate", "too-long"),
    ],
)
def test_owner_refuses_blank_control_characters_and_long_names(name: str) -> None:
    with pytest.raises(InvalidValueError, match="owner"):
        Owner.parse(name)


def test_opening_an_account_checks_every_field() -> None:
    account = open_account("Ada", "EUR", 1000, *BY)
    assert (account.owner.name, account.currency.code, account.opening_balance) == (
        "Ada",
        "EUR",
        Balance(1000),
    )
    for owner, currency, balance, field in [
        ("", "EUR", 0, "owner"),
        ("Ada", "XYZ", 0, "currency"),
        ("Ada", "EUR", -1, "opening_balance_minor"),
        ("Ada", "EUR", MAX_MINOR_UNITS + 1, "opening_balance_minor"),
    ]:
        with pytest.raises(InvalidValueError) as refused:
            open_account(owner, currency, balance, *BY)
        assert refused.value.field == field


def state(account_id: AccountId, balance: int, currency: str = "EUR") -> AccountState:
    return AccountState(account_id, Currency(currency), Balance(balance), *BY)


def test_a_transfer_needs_two_different_accounts() -> None:
    with pytest.raises(SameAccountTransferError, match="two different accounts"):
        TransferRequest(SOURCE, SOURCE, Amount(1), *BY)


def test_a_transfer_debits_the_source_and_credits_the_destination() -> None:
    plan = plan_transfer(
        TransferRequest(SOURCE, DESTINATION, Amount(300), *BY),
        {SOURCE: state(SOURCE, 1000), DESTINATION: state(DESTINATION, 5)},
    )
    assert (plan.debit.account_id, plan.debit.kind, plan.debit.amount_minor) == (
        SOURCE,
        "debit",
        -300,
    )
    assert (plan.credit.account_id, plan.credit.kind, plan.credit.amount_minor) == (
        DESTINATION,
        "credit",
        300,
    )
    assert plan.debit.amount_minor + plan.credit.amount_minor == 0
    assert plan.currency == EUR


def test_the_whole_balance_may_move_but_not_one_unit_more() -> None:
    accounts = {SOURCE: state(SOURCE, 300), DESTINATION: state(DESTINATION, 0)}
    plan_transfer(TransferRequest(SOURCE, DESTINATION, Amount(300), *BY), accounts)
    with pytest.raises(
        InsufficientFundsError, match="holds 300 minor units; the transfer needs 301"
    ):
        plan_transfer(TransferRequest(SOURCE, DESTINATION, Amount(301), *BY), accounts)


def test_a_transfer_stays_within_one_currency() -> None:
    accounts = {SOURCE: state(SOURCE, 1000, "EUR"), DESTINATION: state(DESTINATION, 0, "USD")}
    with pytest.raises(CurrencyMismatchError, match="holds EUR but account 2 holds USD"):
        plan_transfer(TransferRequest(SOURCE, DESTINATION, Amount(1), *BY), accounts)


def test_a_transfer_never_overflows_the_destination() -> None:
    accounts = {SOURCE: state(SOURCE, 10), DESTINATION: state(DESTINATION, MAX_MINOR_UNITS - 5)}
    plan_transfer(TransferRequest(SOURCE, DESTINATION, Amount(5), *BY), accounts)
    with pytest.raises(BalanceLimitError):
        plan_transfer(TransferRequest(SOURCE, DESTINATION, Amount(6), *BY), accounts)


@pytest.mark.parametrize("missing", [SOURCE, DESTINATION])
def test_both_accounts_must_exist(missing: AccountId) -> None:
    present = DESTINATION if missing == SOURCE else SOURCE
    with pytest.raises(AccountNotFoundError, match=f"account {missing} does not exist") as refused:
        plan_transfer(
            TransferRequest(SOURCE, DESTINATION, Amount(1), *BY), {present: state(present, 100)}
        )
    assert isinstance(refused.value, TransferRejectedError)


def test_rules_apply_in_order_currency_before_funds() -> None:
    accounts = {SOURCE: state(SOURCE, 0, "EUR"), DESTINATION: state(DESTINATION, 0, "JPY")}
    with pytest.raises(CurrencyMismatchError):
        plan_transfer(TransferRequest(SOURCE, DESTINATION, Amount(1), *BY), accounts)


def test_values_are_immutable() -> None:
    account_state = state(SOURCE, 1)
    with pytest.raises(AttributeError):
        account_state.balance = Balance(2)  # type: ignore[misc]
