"""Money: integer minor units of an ISO 4217 currency, never floats."""

from __future__ import annotations

from dataclasses import dataclass

import iso4217

from .errors import InvalidValueError

# The largest integer a JSON number carries exactly in every client
# (JavaScript's Number.MAX_SAFE_INTEGER); PostgreSQL's bigint holds it easily.
MAX_MINOR_UNITS = 2**53 - 1

# Currencies with a defined minor unit: X-codes such as gold (XAU) or the
# testing code (XTS) have none, so they cannot be counted in minor units.
CURRENCY_CODES: tuple[str, ...] = tuple(
    sorted(currency.code for currency in iso4217.Currency if currency.exponent is not None)
)
_CURRENCY_CODE_SET = frozenset(CURRENCY_CODES)


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency code. `Currency.parse` checks untrusted input; codes read
    back from storage are trusted as they are, so that a code ISO later withdraws
    (HRK in 2023) does not make existing accounts unreadable."""

    code: str

    @classmethod
    def parse(cls, text: str) -> Currency:
        if text not in _CURRENCY_CODE_SET:
            reason = f"{text!r} is not an ISO 4217 currency code with minor units (e.g. EUR)"
            raise InvalidValueError("currency", reason)
        return cls(text)


@dataclass(frozen=True, slots=True, order=True)
class Amount:
    """A positive number of minor units: what a transfer moves."""

    minor_units: int

    def __post_init__(self) -> None:
        if not 1 <= self.minor_units <= MAX_MINOR_UNITS:
            raise InvalidValueError("amount_minor", f"must be from 1 to {MAX_MINOR_UNITS}")


@dataclass(frozen=True, slots=True, order=True)
class Balance:
    """What an account holds, in minor units: never negative."""

    minor_units: int

    def __post_init__(self) -> None:
        if not 0 <= self.minor_units <= MAX_MINOR_UNITS:
            raise InvalidValueError("balance_minor", f"must be from 0 to {MAX_MINOR_UNITS}")

    def covers(self, amount: Amount) -> bool:
        return self.minor_units >= amount.minor_units

    def has_room_for(self, amount: Amount) -> bool:
        return self.minor_units <= MAX_MINOR_UNITS - amount.minor_units
