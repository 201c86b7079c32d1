"""Events: what happened, as plain values the outbox stores and webhooks carry.
{%- if cookiecutter.example_domain == "ledger" %}

The ledger's events are written by the very statement that writes their fact
(db/accounts.py, db/transfers.py), which builds the payload these functions define
in SQL, from the row it inserts (a test holds the two equal), and gives the event a
random id: a replayed request does not run the write, and a retried transaction
starts over, so each fact is stored once.
{% endif %}"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
{%- if cookiecutter.example_domain == "ledger" %}
from datetime import UTC, datetime
{%- endif %}
from typing import Any, NewType
{%- if cookiecutter.example_domain == "ledger" %}

from .accounts import Account
from .transfers import Transfer
{%- endif %}

EventId = NewType("EventId", uuid.UUID)
# A fixed namespace for uuid5: the same (type, subject) always gives the same id.
EVENT_NAMESPACE = uuid.UUID("6f1c2a7e-3b0d-5c4e-9a8f-2d1e0b7c6a54")
{%- if cookiecutter.example_domain == "ledger" %}
ACCOUNT_OPENED = "account.opened"
TRANSFER_COMPLETED = "transfer.completed"
{%- endif %}
PING = "webhook.ping"
{%- if cookiecutter.example_domain == "ledger" %}
EVENT_TYPES: tuple[str, ...] = (ACCOUNT_OPENED, TRANSFER_COMPLETED, PING)
{%- else %}
EVENT_TYPES: tuple[str, ...] = (PING,)
{%- endif %}


@dataclass(frozen=True)
class Event:
    id: EventId
    type: str
    payload: dict[str, Any]


def event_id(event_type: str, subject: str) -> EventId:
    return EventId(uuid.uuid5(EVENT_NAMESPACE, f"{event_type}:{subject}"))
{%- if cookiecutter.example_domain == "ledger" %}


def instant(moment: datetime) -> str:
    """A payload's timestamp: RFC 3339 in UTC, always with microseconds (the form the
    SQL that builds a payload writes with to_char)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def account_opened(account: Account) -> dict[str, Any]:
    """What an account.opened event carries."""
    return {
        "account_id": account.id,
        "owner": account.owner.name,
        "currency": account.currency.code,
        "balance_minor": account.balance.minor_units,
        "created_at": instant(account.created_at),
    }


def transfer_completed(transfer: Transfer) -> dict[str, Any]:
    """What a transfer.completed event carries."""
    return {
        "transfer_id": transfer.id,
        "from_account_id": transfer.source,
        "to_account_id": transfer.destination,
        "amount_minor": transfer.amount.minor_units,
        "currency": transfer.currency.code,
        "created_at": instant(transfer.created_at),
    }
{%- endif %}


def ping(subscription_id: int, nonce: str) -> Event:
    """A test event for one subscription, so its owner can check the receiving end."""
    return Event(
        id=event_id(PING, f"{subscription_id}:{nonce}"),
        type=PING,
        payload={"subscription_id": subscription_id},
    )
