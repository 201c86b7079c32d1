"""The webhook client against receivers that misbehave: a per-read timeout alone
would let them hold a delivery (and a worker's slot) for ever."""

from __future__ import annotations

import asyncio
import base64
import uuid

import pytest

from {{ cookiecutter.package_name }}.clients.webhooks import WebhookClient
from {{ cookiecutter.package_name }}.configuration import WebhookSettings
from {{ cookiecutter.package_name }}.domain.events import Event, EventId
from {{ cookiecutter.package_name }}.domain.webhooks import Subscription, SubscriptionId

from ..support.raw_receiver import Answering, endless_body, misbehaving, trickle

pytestmark = pytest.mark.anyio

# Far above the client's own deadline (1 s here): reaching it means no deadline.
BOUND_SECONDS = 15.0
SETTINGS = WebhookSettings(
    connect_timeout_seconds=0.5,
    read_timeout_seconds=0.5,
    max_attempts=1,
    initial_delay_seconds=1,
    max_delay_seconds=1,
    allow_private_destinations=True,
)


async def send_to(answer: Answering) -> tuple[int | None, str | None]:
    client = WebhookClient(SETTINGS)
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    event = Event(EventId(uuid.uuid4()), "webhook.ping", {"subscription_id": 1})
    try:
        async with misbehaving(answer) as url:
            subscription = Subscription(SubscriptionId(1), url, secret, ("webhook.ping",), True)
            result = await asyncio.wait_for(client.send(subscription, event), BOUND_SECONDS)
    finally:
        await client.close()
    return result.status_code, result.error


async def test_a_receiver_trickling_its_answer_is_cut_off_at_the_deadline() -> None:
    status_code, error = await send_to(trickle)
    assert status_code is None
    assert error == "no answer within 1.0 s"


async def test_an_endless_body_is_not_read() -> None:
    assert await send_to(endless_body) == (200, None)
