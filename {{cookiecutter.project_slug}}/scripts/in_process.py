"""Requests through the service's ASGI app in process, and what they cost.

    backend/.venv/bin/python scripts/in_process.py --endpoint {{ "account" if cookiecutter.example_domain == "ledger" else "ready" }} --requests 200 \\
        {% if cookiecutter.example_domain == "ledger" %}--first-account 1 --accounts 1000 {% endif %}--result figure.json [--instructions]

No HTTP server and no load generator: the app gets its lifespan, then the requests,
CONCURRENCY at a time, against the real database (APP_* settings, as the service
reads them). The figure is the process's CPU time per request after a warm-up, or
with --instructions the instructions callgrind (valgrind) counts for the measured
requests alone, which vary far less with the machine's load than CPU time. `make
bench-gate` (scripts/bench_gate.py) runs this; so does the template's benchmark,
with `--app` naming its other apps.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
{%- if cookiecutter.example_domain == "ledger" %}
import uuid
{%- endif %}
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
# Each endpoint's method, path and the status every measured request must get.
ENDPOINTS: dict[str, tuple[str, str, int]] = {
{%- if cookiecutter.example_domain == "ledger" %}
    "account": ("GET", "/v1/accounts/{account}", 200),
    "transfer": ("POST", "/v1/transfers", 201),
{%- endif %}
{%- if cookiecutter.auth != "none" %}
    "me": ("GET", "/v1/me", 200),
{%- endif %}
    "ready": ("GET", "/health/ready", 200),
}
# What this script calls right before and after the measured requests, and nothing
# else in the process calls: callgrind zeroes its counters at the first and writes
# them out at the second (--zero-before, --dump-before).
MEASURED_FROM, MEASURED_TO = "getppid", "getpgrp"
# prometheus-client's multiprocess mode: each value a file in this directory.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Set in the environment of the run under callgrind. Start-up and warm-up run there
# uninstrumented (--instr-atstart=no: several times faster than counted), and this
# script switches instrumentation on itself once they are over (callgrind_control).
UNDER_CALLGRIND = "IN_PROCESS_UNDER_CALLGRIND"
# The first line of a callgrind dump that sums every event: "summary: <instructions>".
SUMMARY = re.compile(r"^summary: (\d+)$", re.MULTILINE)
# Under valgrind a run takes 50 times longer, so a background task that wakes every
# few seconds would run a number of times that depends on how busy the machine is.
# Their intervals are a day under --instructions: they cost per second, not per request.
# So does the log writer's thread (every 50 ms: 30,000 to 90,000 instructions a
# transfer, with the machine's load): it then writes only when a thousand lines wait,
# a number of times the requests decide.
TIMERS_OFF = {
    "APP_LOGGING__FLUSH_INTERVAL_SECONDS": "86400",
    "APP_METRICS__POOL_SAMPLE_SECONDS": "86400",
    "APP_DATABASE__BUDGET__CHECK_INTERVAL_SECONDS": "86400",
{%- if cookiecutter.example_domain == "ledger" %}
    "APP_LEDGER__IDEMPOTENCY__CLEANUP_INTERVAL_SECONDS": "86400",
{%- endif %}
}


def load_app(name: str | None) -> ASGIApp:
    """The service's app, or with `name` ("module:attribute") another ASGI app."""
    if name is None:
        from {{ cookiecutter.package_name }}.startup import create_app  # noqa: PLC0415

        return create_app()  # type: ignore[return-value]
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)  # type: ignore[no-any-return]


class Lifespan:
    """The ASGI lifespan protocol, as uvicorn speaks it: startup before the
    requests, shutdown after.

    Hand-written rather than asgi-lifespan's LifespanManager: this runs with the
    production dependency set, which does not include it."""

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
            msg = f"startup failed: {reply}"
            raise RuntimeError(msg)
        return state

    async def __aexit__(self, *_: object) -> None:
        await self.to_app.put({"type": "lifespan.shutdown"})
        await self.from_app.get()
        assert self.task is not None  # noqa: S101 - set by __aenter__
        await self.task


def request(arguments: argparse.Namespace, number: int) -> tuple[dict[str, Any], bytes]:
    """The scope and body of request number `number`; with --authorization, its
    Authorization header is the number-th of the file's values (in turn)."""
    method, path, _ = ENDPOINTS[arguments.endpoint]
    headers = [(b"host", b"127.0.0.1"), (b"user-agent", b"in-process"), (b"accept", b"*/*")]
    if arguments.authorizations:
        values = arguments.authorizations
        headers.append((b"authorization", values[number % len(values)]))
    body = b""
{%- if cookiecutter.example_domain == "ledger" %}
    # Transfers of one batch touch distinct pairs (2n, 2n + 1): no lock waits.
    account = arguments.first_account + (2 * number) % (arguments.accounts - 1)
    path = path.format(account=account)
    if arguments.endpoint == "transfer":
        body = json.dumps(
            {"from_account_id": account, "to_account_id": account + 1, "amount_minor": 1}
        ).encode()
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"idempotency-key", uuid.uuid4().hex.encode()),
        ]
{%- endif %}
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
            request(arguments, number)
            for number in range(batch, min(batch + CONCURRENCY, offset + count))
        ]
        statuses += await asyncio.gather(
            *(one_request(app, state, scope, body) for scope, body in requests)
        )
    return statuses


async def measure(arguments: argparse.Namespace) -> dict[str, Any]:
    app = load_app(arguments.app)
    async with Lifespan(app) as state:
        # Start-up's objects out of the collector's sight: a full collection then walks
        # what requests allocate, not every module loaded, and no count depends on
        # whether one fell inside it.
        gc.collect()
        gc.freeze()
        await serve(app, state, arguments, arguments.warmup, 0)
        if os.environ.get(UNDER_CALLGRIND):
            instrument_from_here()
        started = time.process_time()
        os.getppid()  # MEASURED_FROM
        statuses = await serve(app, state, arguments, arguments.requests, arguments.warmup)
        os.getpgrp()  # MEASURED_TO
        cpu = time.process_time() - started
    # Every request must have succeeded, or the figure would price error paths.
    expected = ENDPOINTS[arguments.endpoint][2]
    unexpected = sorted({status for status in statuses if status != expected})
    if unexpected:
        sys.exit(f"{arguments.endpoint}: statuses {unexpected}, expected {expected}")
    return {"requests": arguments.requests, "cpu_us_per_request": cpu / arguments.requests * 1e6}


def instrument_from_here() -> None:
    """Switch on callgrind's instrumentation of this process; it returns once it is on.
    The wait spins instead of blocking in a system call: valgrind takes the command
    while the process runs, and waking a blocked one needs ptrace, which hardened
    kernels (Yama, as on CI runners) refuse."""
    control = subprocess.Popen(
        ["callgrind_control", "--instr=on", str(os.getpid())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    while control.poll() is None:
        if time.monotonic() > deadline:
            control.kill()
            sys.exit("callgrind_control did not switch instrumentation on within 300 s")
    # callgrind_control exits 0 even when it finds no such run ("Error: ... not
    # detected", "No active callgrind runs"): only its "OK." says the command was sent.
    said = control.stdout.read() if control.stdout else ""
    if control.returncode != 0 or "OK." not in said:
        sys.exit(f"callgrind_control --instr=on did not switch instrumentation on: {said}")


def count_instructions(arguments: argparse.Namespace) -> dict[str, Any]:
    """This script again, under callgrind (every thread of the process): millions of
    instructions per measured request, added to its result."""
    with tempfile.TemporaryDirectory(prefix="callgrind-") as directory:
        dump = Path(directory) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={dump}",
            "--instr-atstart=no",
            f"--zero-before={MEASURED_FROM}",
            f"--dump-before={MEASURED_TO}",
            sys.executable,
            __file__,
            *(argument for argument in sys.argv[1:] if argument != "--instructions"),
        ]
        done = subprocess.run(
            command,
            env={**os.environ, **TIMERS_OFF, UNDER_CALLGRIND: "1"},
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        # The dump at MEASURED_TO is the first numbered one; the file without a number
        # holds what ran after it, until the process exited.
        dumps = sorted(dump.parent.glob(f"{dump.name}.*"))
        if done.returncode != 0 or [path.name for path in dumps] != [f"{dump.name}.1"]:
            sys.exit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr[-3000:]}")
        found = SUMMARY.search(dumps[0].read_text())
    if found is None:
        sys.exit(f"no summary line in the callgrind dump of {arguments.endpoint}")
    result: dict[str, Any] = json.loads(arguments.result.read_text())
    result["m_instructions_per_request"] = int(found.group(1)) / arguments.requests / 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", choices=tuple(ENDPOINTS), required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--result", type=Path, required=True, help="where the JSON figure goes")
{%- if cookiecutter.example_domain == "ledger" %}
    parser.add_argument("--first-account", type=int, required=True)
    parser.add_argument("--accounts", type=int, required=True, help="seeded from first-account")
{%- endif %}
    parser.add_argument(
        "--warmup", type=int, default=WARMUP_REQUESTS, help="requests before the measured ones"
    )
    parser.add_argument(
        "--authorization",
        type=Path,
        help="a file of Authorization header values, one a line, sent in turn: one value "
        "prices a cached credential, as many values as requests a cache miss each",
    )
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions with callgrind"
    )
    parser.add_argument(
        "--app", help="module:attribute of another ASGI app (default: the service's own)"
    )
    parser.add_argument("--app-dir", type=Path, help="a directory to import --app from")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="metrics-") as metrics_directory:
        # Metrics as the service keeps them (its __main__ sets this for its workers),
        # set before prometheus-client is imported, which picks its values' kind then.
        os.environ.setdefault(MULTIPROCESS_DIR, metrics_directory)
        run(arguments)


def run(arguments: argparse.Namespace) -> None:
    if arguments.instructions:
        arguments.result.write_text(json.dumps(count_instructions(arguments)))
        return
    if arguments.app_dir:
        sys.path.insert(0, str(arguments.app_dir))
    # Read (and the tokens in it minted) before any measurement: signing is the client's cost.
    arguments.authorizations = (
        arguments.authorization.read_bytes().splitlines() if arguments.authorization else None
    )
    result = uvloop.run(measure(arguments))
    arguments.result.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
