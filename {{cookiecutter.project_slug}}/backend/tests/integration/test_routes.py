"""The app's routes behave as FastAPI routes declared on the app itself."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from {{ cookiecutter.package_name }}.configuration import Settings
from {{ cookiecutter.package_name }}.db.pool import Database
from {{ cookiecutter.package_name }}.handlers.dependencies import get_database

from ..support.apps import serving

pytestmark = pytest.mark.anyio


async def test_the_apps_dependency_overrides_reach_its_routes(settings: Settings) -> None:
    """FastAPI's way to replace a dependency in tests: app.dependency_overrides."""

    async def unavailable() -> Database:
        raise HTTPException(418)

    async with serving(settings) as (app, client):
        app.dependency_overrides[get_database] = unavailable
        overridden = await client.get("/health/ready")
        app.dependency_overrides.clear()
        restored = await client.get("/health/ready")
    assert (overridden.status_code, restored.status_code) == (418, 200)
