"""The webhook rules, and the sending client's guard against names that resolve
to refused addresses (localhost resolves through the machine's own resolver)."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.clients.webhooks import WebhookClient
from {{ cookiecutter.package_name }}.configuration import load_settings
from {{ cookiecutter.package_name }}.domain.events import ping
from {{ cookiecutter.package_name }}.domain.webhooks import (
    Outcome,
    RetryPolicy,
    Subscription,
    SubscriptionId,
    outcome_of,
    refused_address,
)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, Outcome.DELIVERED), (204, Outcome.DELIVERED), (410, Outcome.GONE),
     (404, Outcome.RETRY), (500, Outcome.RETRY), (None, Outcome.RETRY), (301, Outcome.RETRY)],
)  # fmt: skip
def test_answers_map_to_outcomes(status: int | None, outcome: Outcome) -> None:
    assert outcome_of(status) is outcome


def test_delays_grow_between_half_a_step_and_a_step_up_to_the_limit() -> None:
    policy = RetryPolicy(max_attempts=10, initial_delay_seconds=1, max_delay_seconds=8)
    lowest = [policy.delay_after(n, lambda low, _high: low) for n in range(1, 7)]
    highest = [policy.delay_after(n, lambda _low, high: high) for n in range(1, 7)]
    assert lowest == [0.5, 1, 2, 4, 4, 4]
    assert highest == [1, 2, 4, 8, 8, 8]
    assert not policy.gives_up_after(9)
    assert policy.gives_up_after(10)


@pytest.mark.parametrize(
    ("address", "refused"),
    [("8.8.8.8", False), ("2606:4700::1111", False), ("127.0.0.1", True), ("10.1.2.3", True),
     ("172.16.0.1", True), ("192.168.0.1", True), ("169.254.169.254", True), ("::1", True),
     ("fe80::1", True), ("fc00::1", True), ("::ffff:127.0.0.1", True), ("0.0.0.0", True),  # noqa: S104
     ("224.0.0.1", True)],
)  # fmt: skip
def test_the_guard_refuses_internal_addresses(address: str, refused: bool) -> None:
    assert refused_address(address, allow_private=False) is refused


def test_allowing_private_destinations_still_refuses_multicast_and_unspecified() -> None:
    assert not refused_address("127.0.0.1", allow_private=True)
    assert refused_address("0.0.0.0", allow_private=True)  # noqa: S104 - an address, not a bind


@pytest.mark.anyio
async def test_a_name_resolving_to_loopback_is_not_called(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENVIRONMENT", "test")
    settings = load_settings().webhooks.model_copy(update={"allow_private_destinations": False})
    client = WebhookClient(settings)
    subscription = Subscription(
        SubscriptionId(1), "http://localhost:9/hook", "whsec_" + "A" * 44, ("webhook.ping",), True
    )
    try:
        answer = await client.send(subscription, ping(1, "n"))
    finally:
        await client.close()
    assert answer.status_code is None
    assert answer.error is not None
    assert "refused destination" in answer.error
