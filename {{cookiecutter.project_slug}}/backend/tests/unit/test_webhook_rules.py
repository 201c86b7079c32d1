"""The webhook rules, and the sending client's guard against names that resolve
to refused addresses (localhost resolves through the machine's own resolver)."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.clients.webhooks import WebhookClient
from {{ cookiecutter.package_name }}.configuration import ConfigurationError, load_settings
from {{ cookiecutter.package_name }}.domain.events import ping
from {{ cookiecutter.package_name }}.domain.webhooks import (
    InvalidDestinationError,
    Outcome,
    RetryPolicy,
    Subscription,
    SubscriptionId,
    check_url,
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
    "url",
    ["https://exa\x00mple.com/", "https://example.com/a\x00", "https://example.com/a b",
     "https://example.com/\n", "gopher://example.com/", "https:///path"],
)  # fmt: skip
def test_urls_with_control_characters_or_no_http_host_are_refused(url: str) -> None:
    with pytest.raises(InvalidDestinationError):
        check_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("address", "refused"),
    [("8.8.8.8", False), ("2606:4700::1111", False), ("127.0.0.1", True), ("10.1.2.3", True),
     ("172.16.0.1", True), ("192.168.0.1", True), ("169.254.169.254", True), ("::1", True),
     ("fe80::1", True), ("fc00::1", True), ("::ffff:127.0.0.1", True), ("0.0.0.0", True),  # noqa: S104
     ("224.0.0.1", True), ("100.64.0.1", True), ("100.100.100.200", True),
     ("2002:7f00:1::", True), ("2002:808:808::", False), ("64:ff9b::7f00:1", True),
     ("2001:0:4136:e378:8000:63bf:80ff:fffe", True)],
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


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [("APP_WORKER__RELAY_INTERVAL_SECONDS", "0", r"worker\.relay_interval_seconds"),
     ("APP_WORKER__RELAY_BATCH_SIZE", "0", r"worker\.relay_batch_size"),
     ("APP_WORKER__RETENTION_SECONDS", "5", r"worker\.retention_seconds")],
)  # fmt: skip
def test_relay_and_retention_settings_are_checked_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, key: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=key):
        load_settings()
