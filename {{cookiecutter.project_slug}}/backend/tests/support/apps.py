"""The app in process with settings of a test's own, and a client to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from {{ cookiecutter.package_name }}.configuration import Settings
from {{ cookiecutter.package_name }}.startup import create_app
{%- if cookiecutter.auth != "none" %}

from .tokens import bearer
{%- endif %}


def default_headers(settings: Settings) -> dict[str, str]:
    """What every test client sends: {% if cookiecutter.auth != "none" %}a token for "alice" with every scope the API knows{% else %}nothing (the API needs no credentials){% endif %}."""
{%- if cookiecutter.auth != "none" %}
    return bearer(settings)
{%- else %}
    del settings
    return {}
{%- endif %}


def with_database_url(settings: Settings, url: str) -> Settings:
    """`settings` with the database at `url`: another role, a proxy, nowhere."""
    database = settings.database.model_copy(update={"url": type(settings.database.url)(url)})
    return settings.model_copy(update={"database": database})


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app started (its lifespan entered) and an ASGI client to it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=default_headers(settings)
        ) as client:
            yield app, client
