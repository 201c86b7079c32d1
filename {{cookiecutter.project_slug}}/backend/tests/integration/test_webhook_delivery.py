"""Webhook delivery end to end: events queued through the API, real worker
processes, a real HTTP receiver. Leases and back-off are seconds long here
(configuration/test.yaml), so crashes and retries play out in seconds."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from {{ cookiecutter.package_name }}.configuration import Settings

from ..support.apps import serving
from ..support.http_server import free_port
from ..support.receiver import Delivery, receiving, wait_until
from ..support.webhooks import (
    delivery_states,
    event_ids,
    jobs_by_status,
    ping,
    settled,
    subscribe,
)
from ..support.worker import running_worker

pytestmark = pytest.mark.anyio

DELIVERY_SECONDS = 30.0
BACKOFF = {
    "APP_WEBHOOKS__INITIAL_DELAY_SECONDS": "0.4",
    "APP_WEBHOOKS__MAX_DELAY_SECONDS": "2",
    "APP_WORKER__DEQUEUE_TIMEOUT_SECONDS": "0.1",
}


async def test_deliveries_are_signed_per_standard_webhooks(
    settings: Settings, database_url: str
) -> None:
    async with serving(settings) as (_, client), receiving() as receiver:
        subscription = await subscribe(client, receiver)
        await ping(client, subscription["id"])
        with running_worker(database_url):
            await wait_until(lambda: len(receiver.deliveries) == 1, DELIVERY_SECONDS, "delivered")
    (delivery,) = receiver.deliveries
    webhook = Webhook(subscription["secret"])
    payload = webhook.verify(delivery.body, delivery.headers)
    assert payload["type"] == "webhook.ping"
    assert payload["data"] == {"subscription_id": subscription["id"]}
    assert delivery.webhook_id in await event_ids(database_url)
    tampered = delivery.body.replace(b"webhook.ping", b"webhook.pong")
    with pytest.raises(WebhookVerificationError):
        webhook.verify(tampered, delivery.headers)
    # Signed correctly, but ten minutes ago: a replayed request.
    old = datetime.now(UTC) - timedelta(minutes=10)
    replayed = delivery.headers | {
        "webhook-timestamp": str(int(old.timestamp())),
        "webhook-signature": webhook.sign(delivery.webhook_id, old, delivery.body.decode()),
    }
    with pytest.raises(WebhookVerificationError, match="too old"):
        webhook.verify(delivery.body, replayed)


async def test_a_failing_receiver_gets_retries_with_growing_delays_then_succeeds(
    settings: Settings, database_url: str
) -> None:
    failures = 3

    def answer(delivery: Delivery) -> int:
        return 503 if len(receiver.deliveries) < failures else 200

    async with serving(settings) as (_, client), receiving() as receiver:
        receiver.answer = answer
        subscription = await subscribe(client, receiver)
        await ping(client, subscription["id"])
        # Steps of 0.4, 0.8 and 1.6 s, polled every 0.1 s: each wait is between half
        # its step and its step (equal jitter), plus the time to pick the job up.
        with running_worker(database_url, **BACKOFF) as worker:
            await wait_until(
                lambda: len(receiver.deliveries) == failures + 1, DELIVERY_SECONDS, "retried"
            )
            await wait_until(lambda: "webhook delivered" in worker.output(), 5, "logged")
    times = [delivery.received_at for delivery in receiver.deliveries]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    steps = [0.4 * 2**attempt for attempt in range(failures)]
    assert all(gap >= step / 2 for gap, step in zip(gaps, steps, strict=True)), gaps
    assert gaps[-1] > gaps[0], gaps
    assert len(receiver.ids()) == 1
    assert await delivery_states(database_url) == {"delivered": 1}


async def test_a_receiver_that_never_recovers_ends_in_the_dead_letters(
    settings: Settings, database_url: str
) -> None:
    async with serving(settings) as (_, client), receiving() as receiver:
        receiver.answer = lambda _: 500
        subscription = await subscribe(client, receiver)
        await ping(client, subscription["id"])
        attempts = settings.webhooks.max_attempts
        with running_worker(database_url) as worker:
            await wait_until(
                lambda: len(receiver.deliveries) == attempts, DELIVERY_SECONDS, "tried"
            )
            await wait_until(lambda: "dead-lettered" in worker.output(), 5, "dead-lettered")
            await asyncio.sleep(settings.webhooks.max_delay_seconds * 2)
            assert "webhook_dead_letters_total 1.0" in worker.metrics()
        response = await client.get(
            "/v1/webhook-dead-letters", params={"subscription_id": subscription["id"]}
        )
    assert len(receiver.deliveries) == attempts  # none after the last
    (letter,) = response.json()
    assert letter["attempts"] == attempts
    assert letter["last_status_code"] == 500
    assert letter["event_type"] == "webhook.ping"


async def test_an_unreachable_receiver_is_retried_then_dead_lettered_with_the_error(
    settings: Settings, database_url: str
) -> None:
    async with serving(settings) as (_, client):
        created = await client.post(
            "/v1/webhook-subscriptions",
            json={"url": f"http://127.0.0.1:{free_port()}/gone", "event_types": ["webhook.ping"]},
        )
        await ping(client, created.json()["id"])
        with running_worker(database_url, APP_WEBHOOKS__MAX_ATTEMPTS="2") as worker:
            await wait_until(lambda: "dead-lettered" in worker.output(), DELIVERY_SECONDS, "dead")
        (letter,) = (await client.get("/v1/webhook-dead-letters")).json()
    assert letter["attempts"] == 2
    assert letter["last_status_code"] is None
    assert letter["last_error"].startswith("ConnectError")


async def test_a_receiver_answering_410_disables_its_subscription(
    settings: Settings, database_url: str
) -> None:
    async with serving(settings) as (_, client), receiving() as receiver:
        receiver.answer = lambda _: 410
        subscription = await subscribe(client, receiver)
        await ping(client, subscription["id"])
        with running_worker(database_url):
            await wait_until(lambda: len(receiver.deliveries) == 1, DELIVERY_SECONDS, "called")
            await asyncio.sleep(0.5)
        found = await client.get(f"/v1/webhook-subscriptions/{subscription['id']}")
        again = await client.post(f"/v1/webhook-subscriptions/{subscription['id']}/ping")
    assert found.json()["enabled"] is False
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert len(receiver.deliveries) == 1


async def test_one_slow_receiver_does_not_hold_up_another(
    settings: Settings, database_url: str
) -> None:
    async with (
        serving(settings) as (_, client),
        receiving() as slow,
        receiving() as fast,
    ):
        slow.delay_seconds = settings.webhooks.read_timeout_seconds * 0.9
        slow_subscription = await subscribe(client, slow)
        fast_subscription = await subscribe(client, fast)
        await ping(client, slow_subscription["id"], times=10)
        await ping(client, fast_subscription["id"], times=10)
        with running_worker(database_url):
            await wait_until(lambda: len(fast.ids()) == 10, DELIVERY_SECONDS, "fast delivered")
            slow_answered = len(slow.deliveries)
            await wait_until(lambda: len(slow.ids()) == 10, DELIVERY_SECONDS, "slow delivered")
    # All ten fast ones arrived while the slow receiver still held some of its own
    # (compared with the slow receiver, not the clock: the machine may be busy).
    assert slow_answered < 10, slow_answered


async def test_a_worker_killed_mid_delivery_loses_nothing(
    settings: Settings, database_url: str
) -> None:
    events = 40
    async with serving(settings) as (_, client), receiving() as receiver:
        receiver.delay_seconds = 0.5  # so deliveries are in flight when the worker dies
        subscription = await subscribe(client, receiver)
        await ping(client, subscription["id"], times=events)
        with running_worker(database_url) as doomed:
            await wait_until(lambda: receiver.in_flight >= 5, DELIVERY_SECONDS, "in flight")
            doomed.kill()
        in_flight_at_kill = receiver.in_flight
        killed_at = time.monotonic()
        with running_worker(database_url):
            await wait_until(lambda: len(receiver.ids()) == events, DELIVERY_SECONDS, "all")
            taken_over = time.monotonic() - killed_at
            await settled(database_url, {"delivered": events})
    assert receiver.ids() == await event_ids(database_url)
    assert in_flight_at_kill > 0
    # The killed worker's claimed jobs waited out their lease before another took them.
    # PgQueuer beats every half lease and flushes within an eighth, so the last beat
    # written may be 5/8 of a lease old at the kill: the takeover comes 3/8 after it.
    assert taken_over >= settings.worker.heartbeat_timeout_seconds * 3 / 8


async def test_sigterm_under_load_finishes_its_jobs_and_leaves_none_claimed(
    settings: Settings, database_url: str
) -> None:
    events = 60
    async with serving(settings) as (_, client), receiving() as receiver:
        receiver.delay_seconds = 0.3
        subscription = await subscribe(client, receiver)
        await ping(client, subscription["id"], times=events)
        with running_worker(database_url) as worker:
            await wait_until(lambda: receiver.in_flight >= 5, DELIVERY_SECONDS, "in flight")
            stopped_at = time.monotonic()
            code = await asyncio.to_thread(
                worker.terminate, settings.worker.graceful_shutdown_seconds + 5
            )
            stop_seconds = time.monotonic() - stopped_at
            assert "worker stopped" in worker.output()
        assert code == 0, worker.output()
        assert stop_seconds < settings.worker.graceful_shutdown_seconds
        # Nothing left claimed: every job is done or waiting for the next worker.
        assert "picked" not in await jobs_by_status(database_url)
        with running_worker(database_url):
            await wait_until(lambda: len(receiver.ids()) == events, DELIVERY_SECONDS, "all")
            await settled(database_url, {"delivered": events})
    assert Counter(d.webhook_id for d in receiver.deliveries).most_common(1)[0][1] == 1
    assert json.loads(receiver.deliveries[0].body)["type"] == "webhook.ping"
