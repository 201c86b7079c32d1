"""Webhook rules: which subscriptions an event goes to, what an answer means,
how long to wait before the next attempt, and which destinations are refused."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import NewType
from urllib.parse import urlsplit

SubscriptionId = NewType("SubscriptionId", int)
URL_MAX_LENGTH = 2000
EVENT_TYPES_MAX = 20


class WebhookError(Exception):
    """A request about webhooks that the rules refuse."""


class SubscriptionNotFoundError(WebhookError):
    def __init__(self, subscription_id: SubscriptionId) -> None:
        super().__init__(f"webhook subscription {subscription_id} does not exist")


class InvalidDestinationError(WebhookError):
    """A URL the service will not send to (not http(s), no host, or a refused address)."""


@dataclass(frozen=True, slots=True)
class Subscription:
    id: SubscriptionId
    url: str
    secret: str
    event_types: tuple[str, ...]
    enabled: bool


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery given up after its last attempt (also the API's view of it)."""

    event_id: uuid.UUID
    subscription_id: int
    event_type: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    failed_at: datetime


class Outcome(Enum):
    DELIVERED = "delivered"  # 2xx: done
    GONE = "gone"  # 410: the receiver asks never to be called again
    RETRY = "retry"  # anything else, or no answer at all


def outcome_of(status_code: int | None) -> Outcome:
    if status_code is not None and 200 <= status_code < 300:
        return Outcome.DELIVERED
    if status_code == 410:
        return Outcome.GONE
    return Outcome.RETRY


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    initial_delay_seconds: float
    max_delay_seconds: float

    def gives_up_after(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def delay_after(self, attempts: int, uniform: Callable[[float, float], float]) -> float:
        """Exponential with "equal jitter": half the step is fixed, half random, so
        delays still grow with each attempt while receivers that failed together
        are not all called again at the same instant."""
        step = min(self.initial_delay_seconds * 2.0 ** (attempts - 1), self.max_delay_seconds)
        return step / 2 + uniform(0, step / 2)


def check_url(url: str, *, allow_private: bool) -> str:
    """A URL a subscription may have: http or https with a host, not an address the
    guard refuses. Names are checked again each time they are called (what a name
    resolves to can change)."""
    try:
        parts = urlsplit(url)
        scheme, hostname, _ = parts.scheme, parts.hostname, parts.port
    except ValueError:  # a bad port or IPv6 literal
        scheme, hostname = "", None
    # A URL has no spaces or control characters (PostgreSQL stores no NUL at all).
    printable = url.isprintable() and not any(character.isspace() for character in url)
    if (
        not printable
        or len(url) > URL_MAX_LENGTH
        or scheme not in ("http", "https")
        or not hostname
    ):
        message = (
            f"must be an http or https URL with a host, at most {URL_MAX_LENGTH} long,"
            " without spaces or control characters"
        )
        raise InvalidDestinationError(message)
    try:
        literal = ipaddress.ip_address(hostname)
    except ValueError:
        return url
    if refused_address(str(literal), allow_private=allow_private):
        message = f"{hostname} is a private, loopback, link-local or reserved address"
        raise InvalidDestinationError(message)
    return url


def refused_address(address: str, *, allow_private: bool) -> bool:
    """Server-side request forgery guard: loopback, private, link-local (cloud
    metadata lives at 169.254.169.254), multicast, reserved and unspecified
    addresses are refused unless the configuration allows private destinations."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address carried in IPv6 (mapped, 6to4, Teredo) is judged as itself.
        teredo_client = ip.teredo[1] if ip.teredo else None
        ip = ip.ipv4_mapped or ip.sixtofour or teredo_client or ip
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return True
    # Not globally reachable: private, loopback, link-local, and also the shared
    # address space 100.64.0.0/10 (carrier-grade NAT, some clouds' internal
    # services), which is_private leaves out.
    return not ip.is_global and not allow_private
