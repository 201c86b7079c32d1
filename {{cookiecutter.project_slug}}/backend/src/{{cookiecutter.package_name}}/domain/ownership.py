"""Who may do what with an account: its holder (the subject that opened it) reads it
and moves money out of it; a principal with the admin scope reads every account.
Money may move to any account."""

from __future__ import annotations

from ..principal import Principal
from .accounts import AccountId
from .errors import DomainError

READ_SCOPE = "ledger:read"
WRITE_SCOPE = "ledger:write"
ADMIN_SCOPE = "admin"


class NotAccountHolderError(DomainError):
    def __init__(self, account_id: AccountId) -> None:
        super().__init__(f"only the holder of account {account_id} may move money out of it")


def may_read(principal: Principal, holder: str) -> bool:
    return holder == principal.subject or principal.has_scope(ADMIN_SCOPE)


def listed_holder(principal: Principal) -> str | None:
    """Whose accounts a listing shows: the principal's own, or everyone's (None) for an admin."""
    return None if principal.has_scope(ADMIN_SCOPE) else principal.subject


def ensure_may_debit(subject: str, account_id: AccountId, holder: str) -> None:
    """Only the holder moves money out; the admin scope reads, it does not spend."""
    if holder != subject:
        raise NotAccountHolderError(account_id)
