"""Health, version, request ids and RFC 9457 errors, through the real app and database."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from ..support.databases import head_revision

pytestmark = pytest.mark.anyio
PROBLEM = "application/problem+json"


async def test_live_and_ready(client: httpx.AsyncClient) -> None:
    live = await client.get("/health/live")
    ready = await client.get("/health/ready")
    assert (live.status_code, live.json()) == (200, {"status": "live"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_version_reports_the_migrated_revision(client: httpx.AsyncClient) -> None:
    response = await client.get("/version")
    assert response.status_code == 200
    assert response.json()["schema_revision"] == head_revision()


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/health/live", headers={"X-Request-ID": "req-42"})
    generated = await client.get("/health/live")
    forged = await client.get("/health/live", headers={"X-Request-ID": 'x", "level": 60'})
    assert given.headers["x-request-id"] == "req-42"
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["x-request-id"])


async def test_unknown_route_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "instance": "/no/such/route",
    }


async def test_wrong_method_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/health/live")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["allow"] == "GET"
    assert response.json()["title"] == "Method Not Allowed"


async def test_validation_error_lists_the_fields(app: FastAPI, client: httpx.AsyncClient) -> None:
    @app.get("/probe/{number}")
    async def probe(number: int) -> dict[str, int]:
        return {"number": number}

    response = await client.get("/probe/not-a-number")
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    params = response.json()["invalid_params"]
    assert [param["name"] for param in params] == ["path.number"]


async def test_unexpected_error_is_a_500_problem_without_a_trace(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    @app.get("/probe-crash")
    async def crash() -> None:
        message = "secret internals"
        raise RuntimeError(message)

    response = await client.get("/probe-crash")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "An unexpected error occurred."
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
