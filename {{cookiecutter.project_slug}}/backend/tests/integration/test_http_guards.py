"""Limits, security headers, docs and metrics, through the real app in process. (The
template's own suite checks them on the deployed process, under faults.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from prometheus_client import generate_latest

from {{ cookiecutter.package_name }} import metrics
from {{ cookiecutter.package_name }}.configuration import Settings
from {{ cookiecutter.package_name }}.startup import create_app

from ..support.apps import serving
from ..support.failing import stream_failing_midway
from ..support.http_server import exchange, serving_over_tcp
from ..support.log_lines import errors_in

pytestmark = pytest.mark.anyio
PROBLEM = "application/problem+json"


def with_http(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"http": settings.http.model_copy(update=changes)})


async def test_security_headers_and_hsts_behind_tls(client: httpx.AsyncClient) -> None:
    plain = await client.get("/health/live")
    missing = await client.get("/no/such/route")
    behind_tls = await client.get("/health/live", headers={"X-Forwarded-Proto": "https"})
    for response in (plain, missing, behind_tls):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in plain.headers
    assert behind_tls.headers["strict-transport-security"] == "max-age=31536000"


async def test_a_routes_own_security_header_wins(app: FastAPI, client: httpx.AsyncClient) -> None:
    @app.get("/probe-framed")
    async def framed() -> Response:
        return Response(headers={"X-Frame-Options": "SAMEORIGIN"})

    response = await client.get("/probe-framed", headers={"X-Request-ID": "framed-1"})
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-request-id"] == "framed-1"


async def test_hsts_always_when_configured(settings: Settings) -> None:
    async with serving(with_http(settings, hsts_always=True, hsts_max_age_seconds=60)) as (
        _,
        client,
    ):
        response = await client.get("/health/live")
    assert response.headers["strict-transport-security"] == "max-age=60"


async def test_hsts_covers_subdomains_only_when_configured(settings: Settings) -> None:
    """includeSubDomains would force HTTPS on every host under the API's domain,
    some of which its owner may not run: an explicit choice."""
    assert settings.http.hsts_include_subdomains is False
    subdomains = with_http(settings, hsts_max_age_seconds=60, hsts_include_subdomains=True)
    async with serving(subdomains) as (_, client):
        response = await client.get("/health/live", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["strict-transport-security"] == "max-age=60; includeSubDomains"


async def test_body_over_the_limit_is_a_413_problem(settings: Settings) -> None:
    async with serving(with_http(settings, max_body_bytes=64)) as (app, client):

        @app.post("/probe-body")
        async def size(request: Request) -> dict[str, int]:
            return {"size": len(await request.body())}

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"x" * 20

        declared = await client.post("/health/live", content=b"x" * 65)
        streamed = await client.post("/probe-body", content=chunks())
        within = await client.post("/probe-body", content=b"x" * 64)
    assert (declared.status_code, declared.headers["content-type"]) == (413, PROBLEM)
    assert declared.json()["detail"] == "The request body is larger than 64 bytes."
    assert (streamed.status_code, streamed.headers["content-type"]) == (413, PROBLEM)
    assert within.json() == {"size": 64}


async def test_a_declared_length_of_thousands_of_digits_is_still_its_number(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server's parser lets zeros lead a Content-Length's digits, past the 4,300
    digits int() reads: over the limit, that length is the 413 problem too, not a 500."""
    app = create_app(with_http(settings, max_body_bytes=64))
    async with app.router.lifespan_context(app), serving_over_tcp(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            length = {"Content-Length": "0" * 5000 + "65"}
            status, headers, _ = await exchange(reader, writer, "/health/live", **length)
        finally:
            writer.close()
    assert (status, headers["content-type"]) == (413, PROBLEM)
    assert errors_in(capsys.readouterr().out) == []


async def test_request_over_the_time_limit_is_a_504_problem(settings: Settings) -> None:
    async with serving(with_http(settings, request_timeout_seconds=0.2)) as (app, client):

        @app.get("/probe-slow")
        async def slow() -> dict[str, bool]:
            await asyncio.sleep(5)
            return {"done": True}

        response = await client.get("/probe-slow")
    assert (response.status_code, response.headers["content-type"]) == (504, PROBLEM)
    assert response.json()["type"] == "/problems/request-timeout"
    assert response.json()["detail"] == "The request took longer than 0.2 s and was cancelled."


async def test_a_change_over_the_time_limit_has_an_unknown_outcome(settings: Settings) -> None:
    """A POST cancelled at its deadline may have committed already: the 504 must not
    claim it was undone, and must tell how to find out safely."""
    async with serving(with_http(settings, request_timeout_seconds=0.2)) as (app, client):

        @app.post("/probe-slow")
        async def slow() -> dict[str, bool]:
            await asyncio.sleep(5)
            return {"done": True}

        response = await client.post("/probe-slow")
    assert (response.status_code, response.headers["content-type"]) == (504, PROBLEM)
    detail = response.json()["detail"]
    assert "cancelled" not in detail
    assert "outcome is unknown" in detail
{%- if cookiecutter.example_domain == "ledger" %}
    assert "Retrying with the same Idempotency-Key is safe" in detail
{%- endif %}


async def test_a_handler_failing_as_it_is_cancelled_at_the_time_limit_gets_a_504(
    settings: Settings,
) -> None:
    """The deadline cancels the request's task; a handler whose clean-up turns that
    cancellation into another error still timed out (504, with what it means for the
    outcome), and the task is no longer marked as being cancelled afterwards."""
    async with serving(with_http(settings, request_timeout_seconds=0.2)) as (app, client):

        @app.post("/probe-slow")
        async def slow() -> dict[str, bool]:
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                raise RuntimeError("clean-up failed") from None
            return {"done": True}

        response = await client.post("/probe-slow")
        # httpx's ASGI transport runs the app in this task: the deadline cancelled it.
        cancelling = asyncio.current_task().cancelling()  # type: ignore[union-attr]
    assert (response.status_code, response.headers["content-type"]) == (504, PROBLEM)
    assert "outcome is unknown" in response.json()["detail"]
    assert cancelling == 0


async def test_a_response_already_streaming_at_the_time_limit_is_cut_off(
    settings: Settings,
) -> None:
    """A started response cannot become a 504: the request fails (the server then
    drops the connection), and the task is no longer marked as being cancelled."""
    async with serving(with_http(settings, request_timeout_seconds=0.2)) as (app, client):

        @app.get("/probe-stream")
        async def stream() -> StreamingResponse:
            async def parts() -> AsyncIterator[bytes]:
                yield b"first"
                await asyncio.sleep(5)
                yield b"never"

            return StreamingResponse(parts())

        with pytest.raises(TimeoutError):
            await client.get("/probe-stream")
        cancelling = asyncio.current_task().cancelling()  # type: ignore[union-attr]
    assert cancelling == 0


async def test_docs_are_off_unless_enabled(settings: Settings) -> None:
    disabled = settings.model_copy(
        update={"application": settings.application.model_copy(update={"docs_enabled": False})}
    )
    async with serving(disabled) as (_, client):
        assert (await client.get("/openapi.json")).status_code == 404
        assert (await client.get("/docs")).status_code == 404
    enabled = settings.model_copy(
        update={"application": settings.application.model_copy(update={"docs_enabled": True})}
    )
    async with serving(enabled) as (_, client):
        assert (await client.get("/openapi.json")).status_code == 200


async def test_metrics_label_requests_by_route_template(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    @app.get("/probe-metrics/{number}")
    async def probe(number: int) -> dict[str, int]:
        return {"number": number}

    for number in (1, 2, 3):
        assert (await client.get(f"/probe-metrics/{number}")).status_code == 200
    line = 'http_requests_total{method="GET",route="/probe-metrics/{number}",status="200"} 3.0'
    # Written by the worker's sampler (every metrics.pool_sample_seconds, 1 s here), the
    # app still serving: within seconds on a busy machine.
    for _ in range(100):
        text = generate_latest(metrics.registry()).decode()
        if line in text:
            break
        await asyncio.sleep(0.1)
    assert line in text
    assert "/probe-metrics/1" not in text
    assert "db_pool_max_size" in text


async def test_requests_that_fail_time_out_or_break_off_are_counted_once_finished(
    settings: Settings,
) -> None:
    async with serving(with_http(settings, request_timeout_seconds=0.2)) as (app, client):

        @app.get("/probe-fails")
        async def fails() -> None:
            message = "a handler's own bug"
            raise RuntimeError(message)

        @app.get("/probe-too-slow")
        async def too_slow() -> None:
            await asyncio.sleep(5)

        @app.get("/probe-breaks-off")
        async def breaks_off() -> StreamingResponse:
            return stream_failing_midway("a stream's own bug, its response started")

        assert (await client.get("/probe-fails")).status_code == 500
        assert (await client.get("/probe-too-slow")).status_code == 504
        # Past every layer, to the server, which drops the connection.
        with pytest.raises(RuntimeError):
            await client.get("/probe-breaks-off")
    # Written at the app's shutdown at the latest, with nothing left in progress.
    samples = {
        (sample.labels.get("route"), sample.labels.get("status")): sample.value
        for metric in metrics.registry().collect()
        if metric.name == "http_requests"
        for sample in metric.samples
        if sample.name == "http_requests_total"
    }
    assert samples[("/probe-fails", "500")] == 1
    assert samples[("/probe-too-slow", "504")] == 1
    # Its first line said 200, but the response broke off: a server error.
    assert samples[("/probe-breaks-off", "500")] == 1
    assert ("/probe-breaks-off", "200") not in samples
    assert metrics.registry().get_sample_value("http_requests_in_progress") == 0


async def test_the_requests_since_the_last_sample_are_written_at_shutdown(
    settings: Settings,
) -> None:
    hourly = settings.model_copy(
        update={"metrics": settings.metrics.model_copy(update={"pool_sample_seconds": 3600})}
    )
    line = 'http_requests_total{method="GET",route="/probe-shutdown",status="200"} 2.0'
    async with serving(hourly) as (app, client):

        @app.get("/probe-shutdown")
        async def probe() -> dict[str, str]:
            return {"probe": "shutdown"}

        # The sampler's task starts at the event loop's next turn, writes, then sleeps
        # an hour: nothing but the shutdown writes these requests.
        await asyncio.sleep(0.05)
        for _ in range(2):
            assert (await client.get("/probe-shutdown")).status_code == 200
        await asyncio.sleep(0.05)
        assert line not in generate_latest(metrics.registry()).decode()
    assert line in generate_latest(metrics.registry()).decode()


async def test_docs_come_from_the_service_and_are_labelled_by_route(settings: Settings) -> None:
    enabled = settings.model_copy(
        update={"application": settings.application.model_copy(update={"docs_enabled": True})}
    )
    async with serving(enabled) as (_, client):
        docs = await client.get("/docs")
        assert (await client.get("/openapi.json")).status_code == 200
    # Written at the app's shutdown at the latest.
    text = generate_latest(metrics.registry()).decode()
    assert docs.status_code == 200
    # Swagger UI's files from this service (a browser test loads them with the network off).
    assert 'src="http://testserver/swagger/swagger-ui-bundle.js"' in docs.text
    assert "https://" not in docs.text
    for route in ("/docs", "/openapi.json"):
        assert 'http_requests_total{method="GET",route="' + route + '",status="200"}' in text


async def test_metrics_are_not_served_on_the_api_port(client: httpx.AsyncClient) -> None:
    """They name routes, statuses and pool sizes: for the scraper, on its own listener."""
    response = await client.get("/metrics")
    assert (response.status_code, response.headers["content-type"]) == (404, PROBLEM)
