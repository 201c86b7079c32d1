"""Health, version, request ids and RFC 9457 errors, through the real app and database."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.responses import StreamingResponse
from starlette.types import Scope

from {{ cookiecutter.package_name }}.configuration import Settings
from {{ cookiecutter.package_name }}.handlers import request_context
from {{ cookiecutter.package_name }}.startup import create_app

from ..support.apps import serving, with_database_url
from ..support.databases import head_revision, temporary_role
from ..support.failing import raising_inside_the_request_context, stream_failing_midway
from ..support.http_server import exchange, serving_over_tcp
from ..support.log_lines import ERROR_LEVEL, entries_in, errors_in
from ..support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.anyio
PROBLEM = "application/problem+json"
# What `exchange` reads: status, headers, body.
Answer = tuple[int, dict[str, str], bytes]


async def test_live_and_ready(client: httpx.AsyncClient) -> None:
    live = await client.get("/health/live")
    ready = await client.get("/health/ready")
    assert (live.status_code, live.json()) == (200, {"status": "live"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_version_reports_the_migrated_revision(client: httpx.AsyncClient) -> None:
    response = await client.get("/version")
    assert response.status_code == 200
    assert response.json()["schema_revision"] == head_revision()


@pytest.fixture
def ungranted_role_url(database_url: str) -> Iterator[str]:
    """The test's database as a role granted no privilege on its tables (the connection
    limit is only the helper's: the pool's few connections fit)."""
    with temporary_role(database_url, connection_limit=10) as url:
        yield url


async def test_version_is_a_503_problem_when_the_role_may_not_read_the_revision(
    settings: Settings, ungranted_role_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A role without SELECT on alembic_version (its grants made by hand, say): a 503
    problem that says the revision is unreadable, not the unhandled 500, and one error
    line with the server's reason (the table and the privilege), without a traceback."""
    async with serving(with_database_url(settings, ungranted_role_url)) as (_, client):
        response = await client.get("/version", headers={"X-Request-Id": "version-1"})
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/schema-revision-unreadable"
    assert "retry-after" not in response.headers, "only a grant helps, not a retry"
    errors = errors_in(capsys.readouterr().out)
    assert [entry["msg"] for entry in errors] == ["schema revision unreadable"], errors
    assert "permission denied for table alembic_version" in errors[0]["reason"]
    assert errors[0]["request_id"] == "version-1"
    assert "exception" not in errors[0]


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
    assert_unexpected_error_problem(response)
    assert "Traceback" not in response.text


def assert_unexpected_error_problem(response: httpx.Response) -> None:
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "An unexpected error occurred."
    assert "secret internals" not in response.text


def assert_500_problem_in_the_request_context(answer: Answer, request_id: str) -> None:
    """The app's 500 problem, answered inside the request context: with its headers."""
    status, headers, body = answer
    assert status == 500
    assert headers["content-type"] == PROBLEM
    assert json.loads(body)["detail"] == "An unexpected error occurred."
    assert b"secret internals" not in body
    assert headers["x-request-id"] == request_id
    assert headers["x-content-type-options"] == "nosniff"


# Native telemetry on keeps FastAPI's outer layers (handlers.outer_layers) around the
# request context; off, the request context is the outermost layer.
@pytest.mark.parametrize("opentelemetry", [False, True], ids=["lean stack", "whole stack"])
async def test_an_error_escaping_every_layer_is_answered_inside_the_request_context(
    settings: Settings, capsys: pytest.CaptureFixture[str], opentelemetry: bool
) -> None:
    """The request context answers what escapes every layer inside it with the app's
    500 problem, through its own headers; logged once, by the app's handler (not raised
    again for the server to log a second time), and the connection kept."""
    application = settings.application.model_copy(update={"opentelemetry": opentelemetry})
    app = create_app(settings.model_copy(update={"application": application}))
    stack = app.build_middleware_stack()
    assert isinstance(stack, ServerErrorMiddleware) == opentelemetry
    raising_inside_the_request_context("/probe-escape", stack)
    app.middleware_stack = stack
    async with app.router.lifespan_context(app), serving_over_tcp(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            answer = await exchange(reader, writer, "/probe-escape", **{"X-Request-Id": "escape-1"})
            assert_500_problem_in_the_request_context(answer, "escape-1")
            after = await exchange(reader, writer, "/health/live")
        finally:
            writer.close()
    assert after[0] == 200, "the keep-alive connection was closed after the 500"
    errors = errors_in(capsys.readouterr().out)
    assert [entry["msg"] for entry in errors] == ["unhandled exception"], errors
    assert errors[0]["request_id"] == "escape-1"
    assert "RuntimeError: secret internals" in errors[0]["exception"]


async def test_an_error_after_the_response_started_is_logged_once(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stream failing midway: too late for a 500, the connection is dropped, and the
    error logged once (by the server, with the request id and the traceback)."""
    # Request lines are info: the test environment's level (warning) leaves them out.
    logging = settings.logging.model_copy(update={"level": "info"})
    app = create_app(settings.model_copy(update={"logging": logging}))

    @app.get("/probe-stream")
    async def stream() -> StreamingResponse:
        return stream_failing_midway("secret internals")

    async with app.router.lifespan_context(app), serving_over_tcp(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            request = "GET /probe-stream HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: stream-1"
            writer.write(f"{request}\r\n\r\n".encode())
            received = await reader.read()  # until the server closes the connection
        finally:
            writer.close()
    assert received.startswith(b"HTTP/1.1 200"), received
    assert b"first" in received
    entries = entries_in(capsys.readouterr().out)
    errors = [entry for entry in entries if entry["level"] >= ERROR_LEVEL]
    assert len(errors) == 1, errors
    assert errors[0]["request_id"] == "stream-1"
    assert "RuntimeError: secret internals" in errors[0]["exception"]
    # Its first line said 200, but it broke off: the request's line says a server error.
    (finished,) = (entry for entry in entries if entry["msg"] == "request finished")
    assert (finished["request_id"], finished["status"]) == ("stream-1", 500)


async def test_an_error_in_the_request_contexts_own_first_steps_is_still_the_500_problem(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything the request context does is inside what ServerErrorMiddleware
    covered: an error before it calls the app (its request id, say) is the app's
    500 problem too, not the server's plain-text 500."""

    def failing(_scope: Scope) -> str:
        message = "secret internals"
        raise RuntimeError(message)

    monkeypatch.setattr(request_context, "_request_id_from", failing)
    transport = httpx.ASGITransport(create_app(settings), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/health/live")
    assert_unexpected_error_problem(response)


def test_fastapis_outer_layers_stay_while_native_telemetry_is_on(settings: Settings) -> None:
    application = settings.application.model_copy(update={"opentelemetry": True})
    app = create_app(settings.model_copy(update={"application": application}))
    assert isinstance(app.build_middleware_stack(), ServerErrorMiddleware)


# TimeoutError too: one raised by the handler's own code is not the request's time limit.
@pytest.mark.parametrize("error", [RuntimeError, TimeoutError])
async def test_an_unexpected_error_is_answered_inside_the_request_context(
    settings: Settings, capsys: pytest.CaptureFixture[str], error: type[Exception]
) -> None:
    """Over a real server and one keep-alive connection: the 500 has the request id,
    the security and CORS headers, is logged once, and the connection stays usable."""
    origin = "https://console.example.test"
    cors = settings.cors.model_copy(update={"allowed_origins": (origin,)})
    app = create_app(settings.model_copy(update={"cors": cors}))

    @app.get("/probe-crash")
    async def crash() -> None:
        message = "secret internals"
        raise error(message)

    async with app.router.lifespan_context(app), serving_over_tcp(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            status, headers, body = await exchange(
                reader, writer, "/probe-crash", Origin=origin, **{"X-Request-Id": "crash-1"}
            )
            after = await exchange(reader, writer, "/health/live")
        finally:
            writer.close()
    assert_500_problem_in_the_request_context((status, headers, body), "crash-1")
    assert headers["access-control-allow-origin"] == origin
    assert after[0] == 200, "the keep-alive connection was closed after the 500"
    errors = errors_in(capsys.readouterr().out)
    assert [entry["msg"] for entry in errors] == ["unhandled exception"], errors
    assert errors[0]["request_id"] == "crash-1"


def shed_total() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "http_requests_shed"
        for sample in metric.samples
        if sample.name == "http_requests_shed_total"
    )


@asynccontextmanager
async def every_connection_busy(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> AsyncIterator[list[asyncio.Task[httpx.Response]]]:
    """Requests (GET /version) holding every connection of the pool, blocked behind a
    lock until the block ends; yields them, to be awaited after."""
    database = app.state.database
    slots = database.stats()["max_size"]
    holder = await asyncpg.connect(database_url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
            blocked = [asyncio.create_task(client.get("/version")) for _ in range(slots)]
            deadline = time.monotonic() + 10
            while database.stats()["in_use"] < slots:
                assert time.monotonic() < deadline, "the requests never took every connection"
                await asyncio.sleep(0.02)
            yield blocked
    finally:
        await holder.close()


async def test_ready_while_every_connection_is_busy(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    """A pool busy with slow requests is not a database that is down: readiness
    answers 200 at once instead of queueing behind them."""
    shed_before = shed_total()
    async with every_connection_busy(app, client, database_url) as blocked:
        ready = await client.get("/health/ready")
    statuses = [response.status_code for response in await asyncio.gather(*blocked)]
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    assert statuses == [200] * len(blocked)
    assert shed_total() == shed_before


@asynccontextmanager
async def serving_through_a_proxy(
    settings: Settings, database_url: str
) -> AsyncIterator[tuple[TcpProxy, FastAPI, httpx.AsyncClient]]:
    """The app, its database reached through a TcpProxy the test controls."""
    proxy = TcpProxy.to_database(database_url)
    await proxy.start()
    through_proxy = with_database_url(settings, proxy.url_through(database_url))
    try:
        async with serving(through_proxy) as (app, client):
            yield proxy, app, client
    finally:
        await proxy.stop()


async def test_a_flood_of_probes_while_every_connection_is_busy_opens_one_connection(
    settings: Settings, database_url: str
) -> None:
    """Readiness asks the server on a connection of its own while the pool is full:
    probes arriving together share one, instead of each opening a connection."""
    async with serving_through_a_proxy(settings, database_url) as (proxy, app, client):
        async with every_connection_busy(app, client, database_url) as blocked:
            opened_before = proxy.accepted
            probes = await asyncio.gather(*(client.get("/health/ready") for _ in range(20)))
            opened = proxy.accepted - opened_before
        await asyncio.gather(*blocked)
    assert [probe.status_code for probe in probes] == [200] * 20
    assert opened == 1


async def test_not_ready_when_every_connection_is_busy_and_the_network_goes_silent(
    settings: Settings, database_url: str
) -> None:
    """A full pool's connections may all be stuck on a network that went silent (no
    reset: they wait for their requests' timeouts): busy must not mean ready then."""
    async with serving_through_a_proxy(settings, database_url) as (proxy, app, client):
        async with every_connection_busy(app, client, database_url) as blocked:
            proxy.silence()
            ready = await client.get("/health/ready")
        proxy.resume()
        await asyncio.gather(*blocked)
    assert ready.status_code == 503, ready.text
    assert ready.headers["content-type"] == PROBLEM


async def test_an_unreachable_database_is_not_ready_and_not_counted_as_shed(
    settings: Settings,
) -> None:
    """Probes are not load: a 503 from /health/ready is not a shed request."""
    unreachable = with_database_url(settings, "postgresql://nobody@127.0.0.1:1/none")
    async with serving(unreachable) as (_, client):
        shed_before = shed_total()
        ready = await client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == PROBLEM
    assert ready.headers["retry-after"].isdigit()
    assert shed_total() == shed_before
