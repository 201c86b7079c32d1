"""Prometheus metrics (prometheus-client), for every uvicorn worker at once.

`python -m {{ cookiecutter.package_name }}` runs N worker processes behind one port. They
share prometheus-client's multiprocess mode: each writes its values to files in
$PROMETHEUS_MULTIPROC_DIR (set by __main__ before any worker starts), and the scrape
sums the files of all of them, served by the supervising process on a listener of its
own (`serve`), not on the API's port. Gauges count only live workers ("livesum").
Without that variable (the in-process tests) the metrics live in the process's own
registry.

A request's own metrics are tallied in plain Python and written to those values once
a second (`RequestTally`): what a scrape shows of them is at most that late.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)

from .processes import running

logger = structlog.get_logger("metrics")

# An ASGI scope; typed here without the web framework, which this module does not need.
Scope = Mapping[str, Any]
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Route templates, not raw paths: bounded label values whatever clients request.
UNMATCHED_ROUTE = "<unmatched>"
# The files of a worker's "live" gauges: gauge_livesum_<pid>.db, gauge_liveall_<pid>.db.
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")

# REQUEST_DURATION's bucket bounds, +Inf aside (RequestTally counts into them).
DURATION_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer a request, by route template.",
    ["method", "route"],
    buckets=DURATION_BOUNDS,
)
REQUESTS = Counter(
    "http_requests",
    "Requests answered, by route template and status code.",
    ["method", "route", "status"],
)
REQUESTS_IN_PROGRESS = Gauge(
    "http_requests_in_progress",
    "Requests being answered, as of the worker's last sample (metrics.pool_sample_seconds).",
    multiprocess_mode="livesum",
)
REQUESTS_SHED = Counter(
    "http_requests_shed",
    "Requests answered 503 + Retry-After because the database could not take them.",
    ["cause"],
)
EVENT_LOOP_LAG = Histogram(
    "event_loop_lag_seconds",
    "How late a worker's event loop ran a timer due now: time spent behind other work.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
COLLECTOR_PAUSES = Histogram(
    "gc_pause_seconds",
    "How long each garbage collection of a worker took, by generation: the worker "
    "answers nothing meanwhile.",
    ["generation"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # FastAPI serves /openapi.json as a plain Starlette route, which leaves no "route"
    # in the scope; its path has no parameters, so it is its own template.
    if scope["path"] == getattr(scope.get("app"), "openapi_url", None):
        return str(scope["path"])
    return UNMATCHED_ROUTE


class _Tally:
    """One (method, route, status)'s requests since the last flush: their number, their
    seconds summed, and how many fell in each of REQUEST_DURATION's buckets (the last
    one +Inf), not cumulative, as prometheus-client stores them."""

    __slots__ = ("buckets", "count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(DURATION_BOUNDS) + 1)


class RequestTally:
    """Every answered request's duration, status and route, and the requests in
    progress, for REQUEST_DURATION, REQUESTS and REQUESTS_IN_PROGRESS: counted here in
    plain Python per request, written to their values by `flush()` (the worker's
    sampler, every metrics.pool_sample_seconds, and its shutdown). prometheus-client
    has no batched write, and writing each request's four values at once cost a read
    about 8 % of its instructions in multiprocess mode (a lock, and a write to the
    values' file, per value; issue 19, ninth round). Only the event loop's thread calls
    it (the request context and the sampler): no lock."""

    def __init__(self) -> None:
        self.in_progress = 0
        self._tallies: dict[tuple[str, str, int], _Tally] = {}

    def started(self) -> None:
        self.in_progress += 1

    def finished(self, scope: Scope, status: int, seconds: float) -> None:
        """One answered request, labelled by route template (FastAPI leaves the matched
        route in the scope, so no route is matched again here)."""
        self.in_progress -= 1
        key = (scope["method"], _route_template(scope), status)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally()
        tally.count += 1
        tally.seconds += seconds
        # Prometheus's bucket `le` holds durations up to and including its bound.
        tally.buckets[bisect.bisect_left(DURATION_BOUNDS, seconds)] += 1

    def flush(self) -> None:
        """Add what was tallied since the last flush to the metrics' values."""
        REQUESTS_IN_PROGRESS.set(self.in_progress)
        tallies, self._tallies = self._tallies, {}
        for (method, route, status), tally in tallies.items():
            duration = REQUEST_DURATION.labels(method, route)
            # The histogram's own values: Histogram has no public way to add several
            # observations at once (tests/unit/test_request_tally.py holds them to observe()).
            duration._sum.inc(tally.seconds)
            for bucket, count in zip(duration._buckets, tally.buckets, strict=True):
                if count:
                    bucket.inc(count)
            REQUESTS.labels(method, route, str(status)).inc(tally.count)


REQUEST_TALLY = RequestTally()


POOL_OPEN_FAILURES = Counter(
    "db_pool_open_failures",
    "Failed attempts to open the pool with its minimum size, at startup and while "
    "retrying after, by error (TooManyConnectionsError, InvalidPasswordError, ...).",
    ["reason"],
)
{% if cookiecutter.auth in ["oidc", "both"] -%}
AUTH_KEYS_STALE = Gauge(
    "auth_signing_keys_stale",
    "1 while the identity provider's keys could not be refreshed and cached ones serve.",
    multiprocess_mode="livemax",
)
AUTH_KEY_REFRESHES = Counter(
    "auth_signing_key_refreshes",
    "Fetches of the identity provider's key set (JWKS), by outcome (ok, failed).",
    ["outcome"],
)
{% endif -%}
POOL = {
    name: Gauge(f"db_pool_{name}", help_text, multiprocess_mode="livesum")
    for name, help_text in {
        "size": "Open connections (in_use + idle), summed over workers.",
        "in_use": "Connections checked out by requests.",
        "idle": "Open connections waiting in the pool.",
        "waiting": "Requests waiting for a connection.",
        "max_size": "The pools' configured maximum.",
    }.items()
}


# Every worker reads the same server-wide figures: one value, not a sum of workers.
BUDGET = {
    "configured": Gauge(
        "db_connection_budget_configured",
        "Connections the pools may open: replicas x workers x pool max_size.",
        multiprocess_mode="livemax",
    ),
    "allowed": Gauge(
        "db_connection_budget_allowed",
        "max_connections less reserved slots and other applications' connections.",
        multiprocess_mode="livemax",
    ),
    "observed": Gauge(
        "db_connection_budget_observed",
        "Open connections of this application (application_name, database), all replicas'.",
        multiprocess_mode="livemax",
    ),
    "headroom": Gauge(
        "db_connection_budget_headroom",
        "allowed - configured: below 0, the pools at full size would be refused.",
        multiprocess_mode="livemin",
    ),
}


def record_budget(figures: Mapping[str, int]) -> None:
    for name, gauge in BUDGET.items():
        gauge.set(figures[name])


def record_pool(stats: Mapping[str, int]) -> None:
    for name, gauge in POOL.items():
        gauge.set(stats[name])


# The most pauses kept between two samples (at most ~1 MB; a second has tens).
PAUSES_KEPT = 10_000


class CollectorPauses:
    """While entered, times every collection of the garbage collector (gc.callbacks);
    `record()` observes the pauses timed since into COLLECTOR_PAUSES. Not observed in
    the callback: a collection starts at whatever allocation (from Python 3.12, the
    next bytecode boundary) comes, possibly inside a metric's write, which holds
    prometheus-client's lock (in multiprocess mode one lock for every value, not
    reentrant): observing there would wait on that lock forever."""

    def __init__(self) -> None:
        self._started = 0.0
        # Appended in whichever thread collected (the log writer's too), drained by record().
        # Bounded: with a long sampling interval (a day under the instruction count) it
        # would grow by ~88 bytes a collection, and record() would then block the loop.
        self._pauses: deque[tuple[int, float]] = deque(maxlen=PAUSES_KEPT)
        self._children = [COLLECTOR_PAUSES.labels(str(generation)) for generation in range(3)]

    def __enter__(self) -> CollectorPauses:
        gc.callbacks.append(self._time)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._time)

    def _time(self, phase: str, info: Mapping[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._pauses.append((info["generation"], time.perf_counter() - self._started))

    def record(self) -> None:
        pauses = self._pauses
        while pauses:
            generation, seconds = pauses.popleft()
            self._children[generation].observe(seconds)


async def sample_event_loop_lag(
    interval_seconds: float, each: Callable[[], None] | None = None
) -> None:
    """Wake every interval, until cancelled (at shutdown), and record how late each
    wake-up came: the event loop's lag, a measure of the time every request (or job)
    of this process waits behind work that holds the loop; and the garbage
    collector's pauses since the last wake-up, one of the things that hold it. One
    timer a wake-up, and a callback per collection, so nothing per request. `each`
    runs at every wake-up."""
    loop = asyncio.get_running_loop()
    with CollectorPauses() as pauses:
        while True:
            try:
                if each is not None:
                    each()
                pauses.record()
            except Exception:
                # One failed sample must not end the sampling: every later sample of
                # the requests, the pool and the event loop's lag would stop with it.
                logger.exception("metrics sample failed; sampling again next interval")
            asleep = loop.time()
            await asyncio.sleep(interval_seconds)
            EVENT_LOOP_LAG.observe(max(0.0, loop.time() - asleep - interval_seconds))


async def sample_worker(stats: Callable[[], Mapping[str, int]], interval_seconds: float) -> None:
    """Record this API worker's pool, its requests and its event loop's lag every interval."""

    def each() -> None:
        try:
            REQUEST_TALLY.flush()
        finally:
            record_pool(stats())

    await sample_event_loop_lag(interval_seconds, each)


class _LiveWorkersCollector(multiprocess.MultiProcessCollector):
    """Every worker's values, after dropping the gauges of workers that died without
    shutting down (SIGKILL, the OOM killer): uvicorn starts another in their place,
    and their last values would otherwise count as a live worker's."""

    def collect(self):  # type: ignore[no-untyped-def]
        forget_dead_workers(Path(os.environ[MULTIPROCESS_DIR_ENV]))
        return super().collect()  # type: ignore[no-untyped-call]


def forget_dead_workers(directory: Path) -> None:
    for path in directory.glob("gauge_live*.db"):
        match = _LIVE_GAUGE_FILE.fullmatch(path.name)
        if match and not running(int(match.group(1))):
            multiprocess.mark_process_dead(int(match.group(1)), str(directory))  # type: ignore[no-untyped-call]


def registry() -> CollectorRegistry:
    """Every worker's values (multiprocess mode), or this process's own."""
    if MULTIPROCESS_DIR_ENV not in os.environ:
        return REGISTRY
    merged = CollectorRegistry()
    _LiveWorkersCollector(merged)  # type: ignore[no-untyped-call]
    return merged


def serve(host: str, port: int) -> None:
    """Answer scrapes on host:port from a thread of this process: the supervisor,
    which outlives its workers. Not the API's port, which the public reaches."""
    start_http_server(port, addr=host, registry=registry())


def serve_or_exit(host: str, port: int, *, program: str, setting: str) -> None:
    """`serve`, or, when the listener cannot start (the port taken, say), exit 2
    naming the setting, as a bad setting does (the API's and the worker's)."""
    try:
        serve(host, port)
    except OSError as error:
        print(f"{program}: {setting}: {host}:{port}: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def worker_stopped() -> None:
    """Write the requests answered since the sampler's last flush, then drop this
    worker's gauges, so livesum counts only the workers still running."""
    REQUEST_TALLY.flush()
    if MULTIPROCESS_DIR_ENV in os.environ:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
