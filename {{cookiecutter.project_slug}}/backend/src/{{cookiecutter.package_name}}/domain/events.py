"""Events: what happened, as plain values the outbox stores and webhooks carry.

An event's id is derived from what it is about, so recording the same fact twice
(a replayed request, a retried transaction) names the same event and is stored once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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


def account_opened(account: Account) -> Event:
    return Event(
        id=event_id(ACCOUNT_OPENED, str(account.id)),
        type=ACCOUNT_OPENED,
        payload={
            "account_id": account.id,
            "owner": account.owner.name,
            "currency": account.currency.code,
            "balance_minor": account.balance.minor_units,
            "created_at": account.created_at.isoformat(),
        },
    )


def transfer_completed(transfer: Transfer) -> Event:
    return Event(
        id=event_id(TRANSFER_COMPLETED, str(transfer.id)),
        type=TRANSFER_COMPLETED,
        payload={
            "transfer_id": transfer.id,
            "from_account_id": transfer.source,
            "to_account_id": transfer.destination,
            "amount_minor": transfer.amount.minor_units,
            "currency": transfer.currency.code,
            "created_at": transfer.created_at.isoformat(),
        },
    )
{%- endif %}


def ping(subscription_id: int, nonce: str) -> Event:
    """A test event for one subscription, so its owner can check the receiving end."""
    return Event(
        id=event_id(PING, f"{subscription_id}:{nonce}"),
        type=PING,
        payload={"subscription_id": subscription_id},
    )
