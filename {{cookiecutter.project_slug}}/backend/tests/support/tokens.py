{%- set oidc = cookiecutter.auth in ["oidc", "both"] -%}
"""Credentials for the tests: {% if oidc %}tokens signed by the development key, which
configuration/test.yaml trusts{% else %}API keys created in the test's database, as
`make api-key` creates them{% endif %}.{% if cookiecutter.auth in ["api_key", "both"] %} `api_key` makes a key{% if cookiecutter.auth == "both" %} (the API takes
either){% endif %}.{% endif %}"""

from __future__ import annotations
{%- if cookiecutter.auth in ["api_key", "both"] %}

import asyncio
from concurrent.futures import ThreadPoolExecutor

import asyncpg
{%- endif %}

{% if cookiecutter.auth in ["api_key", "both"] -%}
from {{ cookiecutter.package_name }}.auth.api_keys import new_key, secret_hash
{% endif -%}
{% if oidc -%}
from {{ cookiecutter.package_name }}.auth.development import mint
{% endif -%}
from {{ cookiecutter.package_name }}.configuration import Settings{% if cookiecutter.auth in ["api_key", "both"] %}, load_settings{% endif %}
{%- if cookiecutter.auth in ["api_key", "both"] %}
from {{ cookiecutter.package_name }}.db import api_keys
from {{ cookiecutter.package_name }}.principal import Principal
{%- endif %}

{% set scopes = [] -%}
{% if cookiecutter.example_domain == "ledger" %}{% set scopes = scopes + ["ledger:read", "ledger:write"] %}{% endif -%}
{% if cookiecutter.background_worker == "yes" %}{% set scopes = scopes + ["webhooks:manage"] %}{% endif -%}
ALL_SCOPES = "{{ scopes | join(" ") }}"
{%- if cookiecutter.auth in ["api_key", "both"] %}


async def _create_key(
    url: str, subject: str, scopes: str, key: tuple[str, str, str] | None = None
) -> str:
    key_id, secret, full_key = key or new_key()
    pepper = load_settings().auth.api_key_pepper.get_secret_value().encode()
    connection = await asyncpg.connect(url)
    try:
        principal = Principal(subject, frozenset(scopes.split()))
        hashed = secret_hash(pepper, key_id, secret)
        await api_keys.create(connection, key_id, f"{subject}-{key_id}", principal, hashed)
    finally:
        await connection.close()
    return full_key
{%- if cookiecutter.auth == "api_key" %}


# "alice"'s key with every scope, made once per run in the migrated template database
# (conftest.py), so each test's database, a copy, holds it: the clients' default
# header costs no database call (and needs none through a test's own TCP proxy).
_DEFAULT_KEY = new_key()


def seed_default_key(url: str) -> None:
    asyncio.run(_create_key(url, "alice", ALL_SCOPES, _DEFAULT_KEY))
{%- endif %}


def api_key(settings: Settings, subject: str = "alice", scopes: str = ALL_SCOPES) -> str:
    """A key for `subject` with `scopes`, new in settings' database{% if cookiecutter.auth == "api_key" %} (alice's with every
    scope is the seeded one){% endif %}. Synchronous, so
    fixtures and sync tests call it as they would mint a token: the insert runs on an
    event loop of its own, in a thread (the test's loop may be running)."""
{%- if cookiecutter.auth == "api_key" %}
    if (subject, scopes) == ("alice", ALL_SCOPES):
        return _DEFAULT_KEY[2]
{%- endif %}
    url = settings.database.url.get_secret_value()
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, _create_key(url, subject, scopes)).result()
{%- endif %}


def bearer(settings: Settings, subject: str = "alice", scopes: str = ALL_SCOPES) -> dict[str, str]:
    """The Authorization header of {% if oidc %}a token{% else %}an API key{% endif %} for `subject` with `scopes`."""
{%- if oidc %}
    return {"Authorization": f"Bearer {mint(subject, scopes, settings.auth.audience)}"}
{%- else %}
    return {"Authorization": f"Bearer {api_key(settings, subject, scopes)}"}
{%- endif %}
