"""CPU per request of one server's ASGI app, called in process: no uvicorn, no k6.

    python bench/in_process.py --server rendered --package ledger_api --endpoint account \\
        --requests 3000 --first-account 1 --accounts 10000 --result cpu.json

Run by bench/run.py with the rendered project's interpreter and the same settings as
its servers (APP_* for the rendered app, BENCH_* for bench/baseline.py). The app gets
its lifespan, then the requests, CONCURRENCY at a time, against the real database;
the figure is this process's CPU time per request, after a warm-up. With the HTTP server and
the load generator out of the picture, it is the app's own cost (framework,
middleware, logging, metrics, driver), and it is steadier than the load runs on a
shared machine, as a process's CPU time barely depends on what else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import uvloop

Message = dict[str, Any]
ASGIApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Coroutine[Any, Any, None],
]
WARMUP_REQUESTS = 300
CONCURRENCY = 8  # within the pool's size, so no request waits for a connection


def load_app(server: str, package: str) -> ASGIApp:
    if server in ("baseline", "bare_fastapi"):  # bench/, this script's directory, is on sys.path
        return importlib.import_module(server).app  # type: ignore[no-any-return]
    startup = importlib.import_module(f"{package}.startup")
    return startup.create_app()  # type: ignore[no-any-return]


class Lifespan:
    """The ASGI lifespan protocol, as uvicorn speaks it: startup before the
    requests, shutdown after (the same for both apps).

    Hand-written rather than asgi-lifespan's LifespanManager: this runs in the
    rendered project's production environment, which does not install it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.to_app: asyncio.Queue[Message] = asyncio.Queue()
        self.from_app: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
        self.task = asyncio.create_task(self.app(scope, self.to_app.get, self.from_app.put))
        await self.to_app.put({"type": "lifespan.startup"})
        reply = await self.from_app.get()
        if reply["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"startup failed: {reply}")
        return state

    async def __aexit__(self, *_: object) -> None:
        await self.to_app.put({"type": "lifespan.shutdown"})
        await self.from_app.get()
        assert self.task is not None
        await self.task


def request(
    endpoint: str,
    number: int,
    first_account: int,
    accounts: int,
    authorizations: list[bytes] | None = None,
) -> tuple[dict[str, Any], bytes]:
    """The scope and body of the benchmark's request number `number`; with
    `authorizations`, its Authorization header is the number-th of them (in turn)."""
    # Transfers of one batch touch distinct pairs (2n, 2n + 1): no lock waits.
    account = first_account + (2 * number) % (accounts - 1)
    headers = [(b"host", b"127.0.0.1"), (b"user-agent", b"in-process"), (b"accept", b"*/*")]
    if authorizations:
        headers.append((b"authorization", authorizations[number % len(authorizations)]))
    method, path, body = "GET", "/health/ready", b""
    if endpoint == "account":
        path = f"/v1/accounts/{account}"
    elif endpoint == "transfer":
        other = account + 1
        method, path = "POST", "/v1/transfers"
        body = json.dumps(
            {"from_account_id": account, "to_account_id": other, "amount_minor": 1}
        ).encode()
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"idempotency-key", uuid.uuid4().hex.encode()),
        ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    return scope, body


async def one_request(
    app: ASGIApp, state: dict[str, Any], scope: dict[str, Any], body: bytes
) -> int:
    """One request through the app, as uvicorn would pass it; returns its status."""
    scope["state"] = dict(state)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


async def serve(
    app: ASGIApp, state: dict[str, Any], arguments: argparse.Namespace, count: int, offset: int
) -> list[int]:
    """`count` requests, CONCURRENCY at a time: a loaded server's event loop has
    others to run while one waits for PostgreSQL, instead of sleeping and waking
    per request (which would price the machine's idle wake-ups, not the app)."""
    statuses: list[int] = []
    for batch in range(offset, offset + count, CONCURRENCY):
        requests = [
            request(
                arguments.endpoint,
                number,
                arguments.first_account,
                arguments.accounts,
                arguments.authorizations,
            )
            for number in range(batch, min(batch + CONCURRENCY, offset + count))
        ]
        statuses += await asyncio.gather(
            *(one_request(app, state, scope, body) for scope, body in requests)
        )
    return statuses


async def measure(arguments: argparse.Namespace) -> dict[str, Any]:
    app = load_app(arguments.server, arguments.package)
    async with Lifespan(app) as state:
        # Start-up's objects out of the collector's sight, for every server alike: a
        # full collection then walks what requests allocate, not every module loaded,
        # and no run's count depends on whether one fell inside it.
        gc.collect()
        gc.freeze()
        await serve(app, state, arguments, arguments.warmup, 0)
        started = time.process_time()
        os.getppid()  # MEASURED_FROM: under callgrind, the counters start from zero here
        statuses = await serve(app, state, arguments, arguments.requests, arguments.warmup)
        os.getpgrp()  # MEASURED_TO: and are written out here (bench/instructions.py)
        cpu = time.process_time() - started
    # Every request must have succeeded, or the figure would price error paths.
    expected = 201 if arguments.endpoint == "transfer" else 200
    unexpected = sorted({status for status in statuses if status != expected})
    if unexpected:
        raise SystemExit(f"{arguments.server} {arguments.endpoint}: statuses {unexpected}")
    return {"requests": arguments.requests, "cpu_us_per_request": cpu / arguments.requests * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("rendered", "bare_fastapi", "baseline"), required=True)
    parser.add_argument("--package", required=True, help="the rendered project's package")
    parser.add_argument("--endpoint", choices=("account", "transfer", "ready"), required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--first-account", type=int, required=True)
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--result", type=Path, required=True, help="where the JSON figure goes")
    parser.add_argument(
        "--warmup", type=int, default=WARMUP_REQUESTS, help="requests before the measured ones"
    )
    parser.add_argument(
        "--authorization",
        type=Path,
        help="a file of Authorization header values, one a line, sent in turn: one value "
        "prices a cached credential, as many values as requests a cache miss each",
    )
    arguments = parser.parse_args()
    # Read (and the tokens in it minted) before any measurement: signing is the client's cost.
    arguments.authorizations = (
        arguments.authorization.read_bytes().splitlines() if arguments.authorization else None
    )
    result = uvloop.run(measure(arguments))
    arguments.result.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
