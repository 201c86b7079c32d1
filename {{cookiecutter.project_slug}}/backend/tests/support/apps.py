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
