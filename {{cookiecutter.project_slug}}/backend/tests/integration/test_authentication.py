"""Bearer authentication through the real app in process, with tokens signed by the
development key that configuration/test.yaml trusts: the 401/403 answers (RFC 6750,
RFC 9457), the size limit, and what the log keeps (the subject) and never keeps (the token)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from {{ cookiecutter.package_name }}.auth.development import mint
from {{ cookiecutter.package_name }}.configuration import Settings
from {{ cookiecutter.package_name }}.handlers.authentication import Authentication

from ..support.apps import serving
from ..support.service import running_service
from ..support.tokens import bearer

PROBLEM = "application/problem+json"
PROTECTED = "/v1/me"
INVALID = 'Bearer error="invalid_token"'


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith(INVALID)
    assert response.json()["type"] == "/problems/invalid-token"


@pytest.mark.anyio
async def test_a_valid_token_yields_its_principal(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await client.get(PROTECTED, headers=bearer(settings, "bob", "b a"))
    assert response.status_code == 200, response.text
    assert response.json() == {"subject": "bob", "scopes": ["a", "b"]}


@pytest.mark.anyio
async def test_a_subject_in_the_api_keys_namespace_is_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """An API key's principal is `api-key:<name>`: no token may claim one."""
    assert_invalid_token(await client.get(PROTECTED, headers=bearer(settings, "api-key:billing")))


@pytest.mark.anyio
async def test_no_token_is_a_bare_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get(PROTECTED, headers={"Authorization": ""})
    del client.headers["authorization"]
    missing = await client.get(PROTECTED)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.headers["content-type"] == PROBLEM
    assert_invalid_token(response)


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic YWxpY2U6c2VjcmV0",
        "Bearer",
        "Bearer not.a.jwt",
        "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIi",  # truncated base64
        "Bearer " + "A" * 65_536,  # 64 KB: refused on its length
    ],
)
@pytest.mark.anyio
async def test_malformed_and_oversized_headers_are_invalid_tokens(
    client: httpx.AsyncClient, authorization: str
) -> None:
    assert_invalid_token(await client.get(PROTECTED, headers={"Authorization": authorization}))
    assert (await client.get("/health/live")).status_code == 200


@pytest.mark.anyio
async def test_a_valid_token_in_a_header_over_the_limit_is_refused_unread(
    settings: Settings,
) -> None:
    limit = 512
    auth = settings.auth.model_copy(update={"max_header_bytes": limit})
    token = bearer(settings, "x" * 250)  # valid, and longer than the limit
    assert len(token["Authorization"]) > limit
    async with serving(settings.model_copy(update={"auth": auth})) as (_, client):
        assert_invalid_token(await client.get(PROTECTED, headers=token))
        assert (await client.get(PROTECTED, headers=bearer(settings, "y"))).status_code == 200


@pytest.mark.anyio
async def test_each_request_reads_the_authentication_its_app_holds_now(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    """The dependency keeps no copy of an app's Authentication between requests (a
    module-level BearerToken serves every app of the process): what app.state holds
    is what the next request gets."""
    token = bearer(settings, "x" * 250)
    assert (await client.get(PROTECTED, headers=token)).status_code == 200
    current = app.state.authentication
    replacement = Authentication(max_header_bytes=len(token["Authorization"]) - 1)
    replacement.tokens = current.tokens
    app.state.authentication = replacement
    assert_invalid_token(await client.get(PROTECTED, headers=token))


@pytest.mark.anyio
async def test_expired_beyond_the_leeway_and_wrong_audience(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    audience = settings.auth.audience
    leeway = settings.auth.leeway_seconds
    expired = mint("alice", "", audience, lifetime_seconds=-(leeway + 5))
    within_leeway = mint("alice", "", audience, lifetime_seconds=-(leeway - 10))
    elsewhere = mint("alice", "", "another-api")
    for token in (expired, elsewhere):
        assert_invalid_token(
            await client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
        )
    ok = await client.get(PROTECTED, headers={"Authorization": f"Bearer {within_leeway}"})
    assert ok.status_code == 200


@pytest.mark.anyio
async def test_docs_can_authorize_with_a_bearer_token(app: FastAPI) -> None:
    document = app.openapi()
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "{{ "JWT or API key (lk_live_…)" if cookiecutter.auth == "both" else "JWT" }}",
    }
    assert document["paths"][PROTECTED]["get"]["security"] == [{"bearer": []}]
    assert "security" not in document["paths"]["/health/live"]["get"]


def test_the_log_binds_the_subject_and_never_holds_a_token(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """The deployed process's own output: every line of a request carries its subject."""
    good = bearer(settings, "carol")
    expired = mint("mallory", "", settings.auth.audience, lifetime_seconds=-3600)
    environment = {
        "APP_ENVIRONMENT": "test",
        "APP_DATABASE__URL": database_url,
        "APP_LOGGING__LEVEL": "info",
    }
    log = tmp_path / "service.log"
    with running_service(environment, log) as base_url:
        assert httpx.get(base_url + PROTECTED, headers=good).status_code == 200
        refused = httpx.get(base_url + PROTECTED, headers={"Authorization": f"Bearer {expired}"})
        assert refused.status_code == 401
    output = log.read_text()
    entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    finished = [entry for entry in entries if entry["msg"] == "request finished"]
    protected = [entry for entry in finished if entry["path"] == PROTECTED]
    assert [entry.get("subject") for entry in protected] == ["carol", None]
    assert [entry["reason"] for entry in entries if entry["msg"] == "token refused"] == ["expired"]
    for token in (good["Authorization"].split()[1], expired):
        for part in token.split("."):
            assert part not in output
{%- if cookiecutter.example_domain == "ledger" %}


@pytest.mark.anyio
async def test_a_token_without_the_scope_gets_403_naming_it(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await client.get("/v1/accounts", headers=bearer(settings, "dave", "ledger:write"))
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="ledger:read"'
    )
    assert "ledger:read" in response.json()["detail"]
{%- endif %}
