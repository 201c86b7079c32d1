"""CORS: only the origins in cors.allowed_origins may call the API from a browser."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from {{ cookiecutter.package_name }}.configuration import ConfigurationError, load_settings
from {{ cookiecutter.package_name }}.startup import create_app

from ..support.environments import production_environment

pytestmark = pytest.mark.anyio
CONSOLE = "http://console.example.test:8081"
# Routes that never touch the database, so no lifespan (no pool) is needed.
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type, x-request-id",
}


def client_for(monkeypatch: pytest.MonkeyPatch, origins: str | None) -> httpx.AsyncClient:
    if origins is not None:
        monkeypatch.setenv("APP_CORS__ALLOWED_ORIGINS", origins)
    transport = httpx.ASGITransport(app=create_app(load_settings()))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_a_listed_origin_may_call_and_read_the_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with client_for(monkeypatch, f'["{CONSOLE}"]') as client:
        preflight = await client.options("/health/live", headers={"Origin": CONSOLE, **PREFLIGHT})
        response = await client.get("/health/live", headers={"Origin": CONSOLE})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == CONSOLE
    assert "POST" in preflight.headers["access-control-allow-methods"]
    allowed_headers = preflight.headers["access-control-allow-headers"].lower()
    assert {"content-type", "x-request-id"} <= {h.strip() for h in allowed_headers.split(",")}
    assert "x-request-id" in preflight.headers, "preflights pass through the request context"
    assert response.headers["access-control-allow-origin"] == CONSOLE
    assert response.headers["access-control-expose-headers"] == "*"


async def test_an_unlisted_origin_gets_no_cors_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    other = "https://elsewhere.example.test"
    async with client_for(monkeypatch, f'["{CONSOLE}"]') as client:
        preflight = await client.options("/health/live", headers={"Origin": other, **PREFLIGHT})
        response = await client.get("/health/live", headers={"Origin": other})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in response.headers


async def test_production_allows_no_origin_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    production_environment(monkeypatch)
    assert load_settings().cors.allowed_origins == ()
    async with client_for(monkeypatch, None) as client:
        preflight = await client.options("/health/live", headers={"Origin": CONSOLE, **PREFLIGHT})
        response = await client.get("/health/live", headers={"Origin": CONSOLE})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "origin",
    ["*", "http://console.example.test/", "https://console.example.test/app", "HTTPS://X.TEST"],
)
def test_an_origin_that_could_never_match_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, origin: str
) -> None:
    monkeypatch.setenv("APP_CORS__ALLOWED_ORIGINS", f'["{origin}"]')
    with pytest.raises(ConfigurationError, match=r"cors\.allowed_origins\.0 .*is not an origin"):
        load_settings()


async def test_problems_from_the_limits_carry_cors_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """413 (declared size) and 504 are answered by middleware of their own: a browser
    can read them only if CORS wraps those too."""
    monkeypatch.setenv("APP_CORS__ALLOWED_ORIGINS", f'["{CONSOLE}"]')
    monkeypatch.setenv("APP_HTTP__MAX_BODY_BYTES", "8")
    monkeypatch.setenv("APP_HTTP__REQUEST_TIMEOUT_SECONDS", "0.1")
    app = create_app(load_settings())

    @app.get("/probe-slow")
    async def slow() -> None:
        await asyncio.sleep(5)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        too_large = await client.post("/health/live", content=b"x" * 9, headers={"Origin": CONSOLE})
        too_slow = await client.get("/probe-slow", headers={"Origin": CONSOLE})
    assert (too_large.status_code, too_slow.status_code) == (413, 504)
    for response in (too_large, too_slow):
        assert response.headers["access-control-allow-origin"] == CONSOLE, response.headers
