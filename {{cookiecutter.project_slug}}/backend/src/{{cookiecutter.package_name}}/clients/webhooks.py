"""Sends one event to one subscription, signed per the Standard Webhooks
specification (webhook-id, webhook-timestamp, webhook-signature), over httpx
with connect and read timeouts, to an address checked against the SSRF guard."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from ..configuration import WebhookSettings
from ..domain.events import Event
from ..domain.webhooks import InvalidDestinationError, Subscription, refused_address

USER_AGENT = "{{ cookiecutter.project_slug }}-webhooks"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver answered (status_code), or why there was no answer (error)."""

    status_code: int | None
    error: str | None


def body_of(event: Event, now: datetime) -> bytes:
    """The specification's envelope: type, timestamp and the event's data."""
    return orjson.dumps({"type": event.type, "timestamp": now.isoformat(), "data": event.payload})


def signed_headers(
    subscription: Subscription, event: Event, body: bytes, now: datetime
) -> dict[str, str]:
    """The event id is the webhook-id: the same on every attempt, so a receiver
    deduplicates by it and each event takes effect once."""
    message_id = str(event.id)
    signature = Webhook(subscription.secret).sign(message_id, now, body.decode())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


class WebhookClient:
    def __init__(self, settings: WebhookSettings) -> None:
        self._settings = settings
        timeout = httpx.Timeout(
            connect=settings.connect_timeout_seconds,
            read=settings.read_timeout_seconds,
            write=settings.read_timeout_seconds,
            pool=settings.connect_timeout_seconds,
        )
        # No redirects: a 3xx to an internal address would step around the guard.
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, subscription: Subscription, event: Event) -> Answer:
        try:
            url, host, server_name = await self._pinned(subscription.url)
        except InvalidDestinationError as error:
            return Answer(None, str(error))
        now = datetime.now(UTC)
        body = body_of(event, now)
        headers = signed_headers(subscription, event, body, now) | {"host": host}
        try:
            response = await self._http.post(
                url, content=body, headers=headers, extensions={"sni_hostname": server_name}
            )
        except httpx.HTTPError as error:
            return Answer(None, f"{type(error).__name__}: {error}"[:500])
        return Answer(response.status_code, None)

    async def _pinned(self, url: str) -> tuple[str, str, str]:
        """The URL with its host replaced by an address that passed the guard, the
        Host header, and the name TLS verifies: resolved once and connected to as
        checked, so a name cannot resolve to a public address for the check and to
        an internal one for the request."""
        parts = urlsplit(url)
        hostname = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                hostname, port, type=socket.SOCK_STREAM
            )
        except OSError as error:
            message = f"{hostname}: does not resolve ({error})"
            raise InvalidDestinationError(message) from None
        addresses = sorted({str(info[4][0]) for info in infos})
        allow = self._settings.allow_private_destinations
        refused = [
            address for address in addresses if refused_address(address, allow_private=allow)
        ]
        if refused or not addresses:
            listed = ", ".join(refused) or "no address"
            message = f"{hostname}: refused destination {listed} (private, loopback, link-local)"
            raise InvalidDestinationError(message)
        address = addresses[0]
        literal = address if ipaddress.ip_address(address).version == 4 else f"[{address}]"
        netloc = f"{literal}:{port}"
        host = parts.netloc.rpartition("@")[2]
        pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        return pinned, host, hostname
