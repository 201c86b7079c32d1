"""Events: what happened, as plain values the outbox stores and webhooks carry.
{%- if cookiecutter.example_domain == "ledger" %}

The ledger's events are written by the very statement that writes their fact
(db/accounts.py, db/transfers.py), which builds the payload in SQL from the row it
inserts: that SQL is the one definition of each payload (a second one here, in
Python, would only be run by a test), and tests/integration/test_outbox.py holds it
to what receivers rely on. The event id is the column's default (time-ordered,
migration 0007), not derived from the fact: a replayed request does not run the
write, and a retried transaction starts over, so each fact is stored once.
{% endif %}"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, NewType

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


def ping(subscription_id: int, nonce: str) -> Event:
    """A test event for one subscription, so its owner can check the receiving end."""
    return Event(
        id=event_id(PING, f"{subscription_id}:{nonce}"),
        type=PING,
        payload={"subscription_id": subscription_id},
    )
