"""Fixtures. Integration tests each get their own PostgreSQL database, cloned
from one migrated template database per run, and dropped afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI

from {{ cookiecutter.package_name }}.configuration import Settings, load_settings
from {{ cookiecutter.package_name }}.startup import create_app

from .support import databases
from .support.apps import default_headers
{%- if cookiecutter.auth == "api_key" %}
from .support.tokens import seed_default_key
{%- endif %}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENVIRONMENT", "test")
    for name in ("APP_DATABASE__URL", "APP_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def server_url() -> str:
    return databases.server_url()


@pytest.fixture(scope="session")
def migrated_template(server_url: str) -> Iterator[str]:
    with databases.temporary_database(server_url, "template") as name:
        databases.migrate(databases.with_database(server_url, name))
{%- if cookiecutter.auth == "api_key" %}
        seed_default_key(databases.with_database(server_url, name))
{%- endif %}
        yield name


@pytest.fixture
def database_url(server_url: str, migrated_template: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    with databases.temporary_database(server_url, "test", template=migrated_template) as name:
        url = databases.with_database(server_url, name)
        asyncio.run(databases.store_session_timeouts(url, load_settings().database))
        yield url


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("APP_DATABASE__URL", database_url)
    return load_settings()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=default_headers(settings)
    ) as client:
        yield client
