"""Webhook subscriptions through the API: problem+json for bad input, the
signing secret shown once, the SSRF guard on literal addresses."""

from __future__ import annotations

import httpx
import pytest

from {{ cookiecutter.package_name }}.configuration import Settings

from ..support.apps import serving
{%- if cookiecutter.auth != "none" %}
from ..support.tokens import bearer
{%- endif %}

pytestmark = pytest.mark.anyio
PROBLEM = "application/problem+json"
PATH = "/v1/webhook-subscriptions"


def guarded(settings: Settings) -> Settings:
    """The production default: private destinations refused."""
    webhooks = settings.webhooks.model_copy(update={"allow_private_destinations": False})
    return settings.model_copy(update={"webhooks": webhooks})


async def test_a_subscription_is_created_read_listed_and_deleted(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post(
        PATH, json={"url": "https://hooks.example.com/in", "event_types": ["webhook.ping"]}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert created.headers["location"] == f"{PATH}/{body['id']}"
    read = await client.get(f"{PATH}/{body['id']}")
    assert read.json() == {key: body[key] for key in ("id", "url", "event_types", "enabled")}
    assert "secret" not in (await client.get(PATH)).json()[0]
    assert (await client.delete(f"{PATH}/{body['id']}")).status_code == 204
    gone = await client.get(f"{PATH}/{body['id']}")
    assert gone.status_code == 404
    assert gone.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"url": "ftp://example.com/", "event_types": ["webhook.ping"]}, "url"),
        ({"url": "https://exa\u0000mple.com/", "event_types": ["webhook.ping"]}, "url"),
        ({"url": "https://example.com/", "event_types": ["no.such.event"]}, "event_types"),
        ({"url": "https://example.com/", "event_types": []}, "body.event_types"),
        ({"url": "http://[::1/", "event_types": ["webhook.ping"]}, "url"),
    ],
)
async def test_bad_subscriptions_get_a_problem_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], name: str
) -> None:
    response = await client.post(PATH, json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert name in [param["name"] for param in response.json()["invalid_params"]]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/",
        "http://[::1]/",
        "http://[::ffff:192.168.1.1]/",
    ],
)
async def test_private_loopback_and_link_local_addresses_are_refused(
    settings: Settings, url: str
) -> None:
    async with serving(guarded(settings)) as (_, client):
        response = await client.post(PATH, json={"url": url, "event_types": ["webhook.ping"]})
    assert response.status_code == 422, response.text
    assert response.json()["invalid_params"][0]["name"] == "url"


async def test_dead_letters_reject_a_bad_limit(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/webhook-dead-letters", params={"limit": 0})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
{%- if cookiecutter.auth != "none" %}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", PATH),
        ("GET", PATH),
        ("GET", f"{PATH}/1"),
        ("DELETE", f"{PATH}/1"),
        ("POST", f"{PATH}/1/ping"),
        ("GET", "/v1/webhook-dead-letters"),
    ],
)
async def test_every_webhook_route_needs_the_manage_scope(
    client: httpx.AsyncClient, settings: Settings, method: str, path: str
) -> None:
    body = {"url": "https://hooks.example.com/in", "event_types": ["webhook.ping"]}
    json = body if method == "POST" and path == PATH else None
    without_scope = bearer(settings, "alice", "{{ "ledger:read ledger:write" if cookiecutter.example_domain == "ledger" }}")
    refused = await client.request(method, path, json=json, headers=without_scope)
    assert refused.status_code == 403, refused.text
    assert refused.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="webhooks:manage"'
    )
    assert refused.headers["content-type"] == PROBLEM
    anonymous = await client.request(method, path, json=json, headers={"Authorization": ""})
    assert anonymous.status_code == 401, anonymous.text
{%- endif %}
