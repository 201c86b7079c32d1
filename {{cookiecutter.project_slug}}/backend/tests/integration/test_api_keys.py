"""API keys through the real app, with keys created in the test's database as
`make api-key` creates them: accepted, refused (unknown, wrong secret, malformed,
oversized, revoked once the cache lets go), scoped, owning, and never logged."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from {{ cookiecutter.package_name }}.auth.api_keys import ApiKeyVerifier, StoredKey, new_key, secret_hash
{%- if cookiecutter.auth == "both" and cookiecutter.example_domain == "ledger" %}
from {{ cookiecutter.package_name }}.auth.development import mint
{%- endif %}
from {{ cookiecutter.package_name }}.auth.errors import InvalidTokenError
from {{ cookiecutter.package_name }}.configuration import Settings
from {{ cookiecutter.package_name }}.db import api_keys
from {{ cookiecutter.package_name }}.db.pool import Database
from {{ cookiecutter.package_name }}.principal import Principal

from ..support.apps import serving
{%- if cookiecutter.example_domain == "ledger" %}
from ..support.ledger import open_account
{%- endif %}
from ..support.service import running_service
from ..support.tokens import {% if cookiecutter.auth == "both" and cookiecutter.example_domain == "ledger" %}ALL_SCOPES, {% endif %}api_key

PROBLEM = "application/problem+json"
PROTECTED = "/v1/me"
UNKNOWN = "lk_live_0123456789abcdef_" + "A" * 43


def authorization(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert response.json()["type"] == "/problems/invalid-token"


def with_cache_seconds(settings: Settings, seconds: float) -> Settings:
    auth = settings.auth.model_copy(update={"api_key_cache_seconds": seconds})
    return settings.model_copy(update={"auth": auth})


async def revoke(settings: Settings, name: str) -> None:
    connection = await asyncpg.connect(settings.database.url.get_secret_value())
    try:
        assert await api_keys.revoke(connection, name)
    finally:
        await connection.close()


@pytest.mark.anyio
async def test_a_key_yields_its_principal(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.get(PROTECTED, headers=authorization(api_key(settings, "svc", "b a")))
    assert response.status_code == 200, response.text
    assert response.json() == {"subject": "api-key:svc", "scopes": ["a", "b"]}


@pytest.mark.parametrize(
    "key",
    [
        UNKNOWN,  # well formed, no such id
        "lk_live_0123",  # malformed
        "lk_live_0123456789abcdef_" + "A" * 42 + "!",  # a character no key has
        "lk_live_" + "A" * 65_536,  # 64 KB: refused on its length
    ],
    ids=["unknown", "malformed", "bad-character", "oversized"],
)
@pytest.mark.anyio
async def test_unknown_malformed_and_oversized_keys_are_invalid_tokens(
    client: httpx.AsyncClient, key: str
) -> None:
    assert_invalid_token(await client.get(PROTECTED, headers=authorization(key)))


@pytest.mark.anyio
async def test_a_valid_key_in_a_header_over_the_limit_is_refused_unread(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    padded = f"Bearer {api_key(settings, 'svc')}" + " " * settings.auth.max_header_bytes
    assert_invalid_token(await client.get(PROTECTED, headers={"Authorization": padded}))


@pytest.mark.anyio
async def test_a_known_id_with_another_secret_is_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    key = api_key(settings, "svc")
    forged = key[:-1] + ("C" if key.endswith("B") else "B")
    assert (await client.get(PROTECTED, headers=authorization(key))).status_code == 200
    assert_invalid_token(await client.get(PROTECTED, headers=authorization(forged)))


@pytest.mark.anyio
async def test_a_stored_subject_too_long_with_the_prefix_is_refused_not_a_500(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """The table takes subjects of up to 255 characters, but `api-key:` plus one of
    them must still fit where a subject is stored (an account's holder): such a key
    is an invalid token, not a failed insert later."""
    key_id, secret, key = new_key()
    pepper = settings.auth.api_key_pepper.get_secret_value().encode()
    principal = Principal("s" * 250, frozenset(["ledger:read", "ledger:write"]))
    connection = await asyncpg.connect(settings.database.url.get_secret_value())
    try:
        hashed = secret_hash(pepper, key_id, secret)
        await api_keys.create(connection, key_id, "long-subject", principal, hashed)
    finally:
        await connection.close()
    assert_invalid_token(await client.get(PROTECTED, headers=authorization(key)))
{%- if cookiecutter.example_domain == "ledger" %}
    body = {"owner": "Ada", "currency": "EUR", "opening_balance_minor": 0}
    opened = await client.post("/v1/accounts", json=body, headers=authorization(key))
    assert_invalid_token(opened)
{%- endif %}


@pytest.mark.anyio
async def test_a_revoked_key_is_refused_once_the_cache_lets_go(settings: Settings) -> None:
    """Within api_key_cache_seconds a worker may still accept it; after, never."""
    short = with_cache_seconds(settings, 0.5)
    key = api_key(short, "revoked-svc")
    name = await _name_of(short, key)
    async with serving(short) as (_, client):
        assert (await client.get(PROTECTED, headers=authorization(key))).status_code == 200
        await revoke(short, name)
        cached = await client.get(PROTECTED, headers=authorization(key))
        assert cached.status_code == 200  # the row read before the revocation
        await asyncio.sleep(0.6)
        assert_invalid_token(await client.get(PROTECTED, headers=authorization(key)))
    async with serving(short) as (_, client):  # a fresh worker refuses it at once
        assert_invalid_token(await client.get(PROTECTED, headers=authorization(key)))


@pytest.mark.anyio
async def test_a_flood_of_made_up_keys_reads_the_active_ids_once(
    settings: Settings, database_url: str
) -> None:
    """500 made-up keys, each with a new id, at once: no row lookup, one read of the
    active ids (the real queries on the test's database, counted as they pass)."""
    calls = {"lookups": 0, "id_reads": 0}

    async def lookup(key_id: str) -> StoredKey | None:
        calls["lookups"] += 1
        return await api_keys.find_active(database, key_id)

    async def list_ids(limit: int) -> list[str]:
        calls["id_reads"] += 1
        return await api_keys.active_ids(database, limit)

    known = api_key(settings, "flood-svc")
    database = await Database.open(settings.database, "api-key-flood")
    try:
        verifier = ApiKeyVerifier(
            lookup,
            list_ids,
            settings.auth.api_key_pepper.get_secret_value().encode(),
            ttl_seconds=60,
            unknown_refresh_seconds=60,
            capacity=100,
        )
        made_up = [f"lk_live_{secrets.token_hex(8)}_{'A' * 43}" for _ in range(500)]
        outcomes = await asyncio.gather(
            *(verifier.verify(key) for key in made_up), return_exceptions=True
        )
        assert all(isinstance(outcome, InvalidTokenError) for outcome in outcomes)
        assert calls == {"lookups": 0, "id_reads": 1}
        assert (await verifier.verify(known)).subject == "api-key:flood-svc"
        assert calls == {"lookups": 1, "id_reads": 1}
    finally:
        await database.close()


@pytest.mark.anyio
async def test_a_key_created_after_a_miss_works_within_the_refresh_interval(
    settings: Settings,
) -> None:
    auth = settings.auth.model_copy(update={"api_key_unknown_refresh_seconds": 0.5})
    short = settings.model_copy(update={"auth": auth})
    async with serving(short) as (_, client):
        assert_invalid_token(await client.get(PROTECTED, headers=authorization(UNKNOWN)))
        key = api_key(short, "late-svc")
        # Possibly refused at first (the active ids were read before it existed) ...
        await asyncio.sleep(0.6)
        # ... but no longer than api_key_unknown_refresh_seconds.
        assert (await client.get(PROTECTED, headers=authorization(key))).status_code == 200


async def _name_of(settings: Settings, key: str) -> str:
    key_id = key.removeprefix("lk_live_").partition("_")[0]
    connection = await asyncpg.connect(settings.database.url.get_secret_value())
    try:
        name: str = await connection.fetchval("SELECT name FROM api_keys WHERE id = $1", key_id)
    finally:
        await connection.close()
    return name


@pytest.mark.anyio
async def test_docs_can_authorize_with_a_key(app: FastAPI) -> None:
    scheme = app.openapi()["components"]["securitySchemes"]["bearer"]
    assert scheme["scheme"] == "bearer"
    assert "lk_live_" in scheme["bearerFormat"]
{%- if cookiecutter.example_domain == "ledger" %}


@pytest.mark.anyio
async def test_a_key_without_the_scope_gets_403_naming_it(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    key = api_key(settings, "reader", "ledger:read")
    response = await client.post(
        "/v1/accounts", json={"owner": "X", "currency": "EUR"}, headers=authorization(key)
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="ledger:write"'
    )


@pytest.mark.anyio
async def test_a_key_reads_only_the_accounts_its_subject_opened(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    billing = authorization(api_key(settings, "billing"))
    other = authorization(api_key(settings, "other"))
    account = await open_account(client, 10, headers=billing)
    path = f"/v1/accounts/{account['id']}"
    assert (await client.get(path, headers=billing)).status_code == 200
    assert (await client.get(path, headers=other)).status_code == 404
{%- if cookiecutter.auth == "both" %}


@pytest.mark.anyio
async def test_a_key_named_like_a_user_cannot_read_that_users_accounts(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """A token for alice and a key named alice are two principals (the key's subject is
    api-key:alice): neither reads, lists or moves the other's money."""
    user = {"Authorization": f"Bearer {mint('alice', ALL_SCOPES, settings.auth.audience)}"}
    key = authorization(api_key(settings, "alice"))
    users_account = await open_account(client, 10, headers=user)
    keys_account = await open_account(client, 10, headers=key)
    for headers, others in ((key, users_account), (user, keys_account)):
        path = f"/v1/accounts/{others['id']}"
        assert (await client.get(path, headers=headers)).status_code == 404
        listed = await client.get("/v1/accounts", headers=headers)
        assert others["id"] not in [account["id"] for account in listed.json()["items"]]
    own = await client.get(f"/v1/accounts/{users_account['id']}", headers=user)
    assert own.status_code == 200
{%- endif %}
{%- endif %}


def test_the_log_binds_the_subject_and_never_holds_a_key(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """The deployed process's own output: the key's subject, never the key."""
    good = api_key(settings, "logged-svc")
    wrong = good[:-4] + "AAAA"
    environment = {
        "APP_ENVIRONMENT": "test",
        "APP_DATABASE__URL": database_url,
        "APP_LOGGING__LEVEL": "info",
    }
    log = tmp_path / "service.log"
    with running_service(environment, log) as base_url:
        assert httpx.get(base_url + PROTECTED, headers=authorization(good)).status_code == 200
        assert httpx.get(base_url + PROTECTED, headers=authorization(wrong)).status_code == 401
    output = log.read_text()
    entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    finished = [entry for entry in entries if entry["msg"] == "request finished"]
    assert [entry.get("subject") for entry in finished if entry["path"] == PROTECTED] == [
        "api-key:logged-svc",
        None,
    ]
    assert [entry["reason"] for entry in entries if entry["msg"] == "token refused"] == [
        "wrong api key secret"
    ]
    secret = good.removeprefix("lk_live_").partition("_")[2]
    assert secret not in output
    assert secret[:12] not in output
