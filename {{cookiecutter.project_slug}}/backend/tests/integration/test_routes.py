"""The app's routes behave as FastAPI routes declared on the app itself."""

from __future__ import annotations

import pytest
from fastapi import HTTPException
from fastapi.routing import APIRoute

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


async def test_every_api_route_takes_the_lean_path(settings: Settings) -> None:
    """handlers.lean_route: each route the app declares answers through its lean
    path (FastAPI's own handler only for what it does not support)."""
    async with serving(settings) as (app, _):
        routes = [route for route in app.routes if isinstance(route, APIRoute)]
    assert routes
    assert [route.path for route in routes if not getattr(route, "lean", False)] == []
