"""The measurements: per server and endpoint, k6 at a constant arrival rate, the
bracketed search for the highest sustainable rate, the run at a fixed rate, and the
in-process CPU per request (the rendered scripts/in_process.py)."""

from __future__ import annotations

import itertools
import json
import math
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from identity_provider import authorization_file
from servers import (
    ACCOUNTS,
    BENCH,
    BIN,
    ENDPOINTS,
    LOGGING_OFF,
    SERVERS,
    Server,
    cpu_seconds_between,
    cpu_ticks,
    in_process_command,
    machine_busy_between,
    machine_ticks,
)

# A rate is sustainable when all three hold (the definition).
MAX_ERROR_RATE = 0.01
MAX_P99_MS = 50.0
# The fixed rate is where the rendered service keeps the whole machine (k6, PostgreSQL
# and the app on the same cores) this busy: the load at which the issue asks that its
# p99 stay within 2x the baseline's, and at which queueing starts to show.
FIXED_RATE_MACHINE_BUSY = 0.70
# The rendered service's histograms that show a worker held up: how late its event
# loop ran a timer, and how long each garbage collection took.
LOOP_LAG, GC_PAUSES = "event_loop_lag_seconds", "gc_pause_seconds"
STALL_METRICS = (LOOP_LAG, GC_PAUSES)
# Longer than the rendered service's sampling interval (metrics.pool_sample_seconds,
# 1 s), at whose wake-ups a worker records the pauses of the collections since.
SAMPLER_CATCH_UP_SECONDS = 1.5
# The lowest fixed rate a k6 run gets (requests per second).
MIN_FIXED_RATE = 10


@dataclass(frozen=True)
class Mode:
    rounds: int
    step_seconds: int
    fixed_seconds: int
    first_rates: dict[str, int]
    refine_steps: int  # bisections after the bracket is found
    max_steps: int  # runs per search, whatever happens
    in_process_requests: int  # per in-process run (bench/in_process.py)
    # Seconds per server and endpoint at the search's first rate before round 1, not
    # counted: pools grown to their working size, statements prepared. (A warm-up at a
    # trickle left round 1's first step to pay for opening connections.)
    warmup_seconds: int


FULL = Mode(
    rounds=3,
    step_seconds=4,
    fixed_seconds=5,
    first_rates={"account": 200, "transfer": 100, "ready": 200},
    refine_steps=3,
    max_steps=7,
    warmup_seconds=4,
    in_process_requests=3000,
)
QUICK = Mode(
    rounds=1,
    step_seconds=1,
    fixed_seconds=1,
    first_rates={"account": 50, "transfer": 50, "ready": 50},
    refine_steps=0,
    max_steps=1,
    warmup_seconds=0,
    in_process_requests=100,
)


@dataclass
class Run:
    server: str
    endpoint: str
    round: int
    rate: int
    kind: str  # "search" or "fixed"
    requests: int
    failed_rate: float
    dropped_iterations: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_seconds: float
    db_cpu_seconds: float
    machine_busy: float  # share of every core's time busy during the run (/proc/stat)
    # The rendered service's stalls during a fixed-rate run, from its own metrics: its
    # event-loop lag (one sample per worker per metrics.pool_sample_seconds) and its
    # garbage collections (each one timed). For each, how many were seen and the
    # histogram's upper bound under which the largest fell. None elsewhere.
    # The largest past the histogram's last bound: *_max_ms None, *_over_ms that bound.
    loop_lag_samples: int | None = None
    loop_lag_max_ms: float | None = None
    loop_lag_over_ms: float | None = None
    gc_pauses: int | None = None
    gc_pause_max_ms: float | None = None
    gc_pause_over_ms: float | None = None

    @property
    def sustained(self) -> bool:
        return (
            self.requests > 0
            and self.failed_rate < MAX_ERROR_RATE
            and self.p99_ms < MAX_P99_MS
            and self.dropped_iterations == 0
        )


@dataclass
class Bench:
    mode: Mode
    servers: dict[str, Server]
    first_account: int
    work: Path
    database_url: str
    # The run's bearer token, sent with every ledger request to every server: the
    # rendered ones verify it, the hand-written ones ignore it, and all parse the
    # same requests.
    token: str | None = None
    runs: list[Run] = field(default_factory=list)

    def k6_environment(self, server: Server, summary_file: Path) -> dict[str, str]:
        """What bench/scenario.js and bench/crowd.js share: the server, the accounts,
        the token, where the summary goes."""
        return {
            **os.environ,
            "K6_NO_USAGE_REPORT": "true",
            "BASE_URL": server.url,
            "ACCOUNTS": str(ACCOUNTS),
            "FIRST_ACCOUNT": str(self.first_account),
            "SUMMARY_FILE": str(summary_file),
            **({"TOKEN": self.token} if self.token else {}),
        }

    def k6(
        self,
        server: Server,
        endpoint: str,
        rate: int,
        *,
        seconds: int,
        kind: str,
        round_number: int,
    ) -> Run:
        summary_file = self.work / f"k6-{uuid.uuid4().hex}.json"
        env = {
            **self.k6_environment(server, summary_file),
            "ENDPOINT": endpoint,
            "RATE": str(rate),
            "DURATION": f"{seconds}s",
            "RUN_ID": uuid.uuid4().hex,
        }
        server_before = cpu_ticks(server.pids())
        db_before = cpu_ticks(server.backend_pids(self.database_url))
        watch_stalls = kind == "fixed" and server.exports_metrics
        stalls_before = settled_stalls(server) if watch_stalls else None
        machine_before = machine_ticks()
        subprocess.run(
            [str(BIN / "k6"), "run", "--quiet", "--no-color", str(BENCH / "scenario.js")],
            env=env,
            check=True,
            timeout=seconds + 60,
            stdout=subprocess.DEVNULL,
        )
        machine_busy = machine_busy_between(machine_before, machine_ticks())
        cpu = cpu_seconds_between(server_before, cpu_ticks(server.pids()))
        db_cpu = cpu_seconds_between(db_before, cpu_ticks(server.backend_pids(self.database_url)))
        stalls_after = settled_stalls(server) if watch_stalls else None
        summary = json.loads(summary_file.read_text())
        run = Run(
            server=server.name,
            endpoint=endpoint,
            round=round_number,
            rate=rate,
            kind=kind,
            requests=summary["requests"],
            failed_rate=summary["failed_rate"],
            dropped_iterations=summary["dropped_iterations"],
            p50_ms=summary["p50_ms"] or 0.0,
            p95_ms=summary["p95_ms"] or 0.0,
            p99_ms=summary["p99_ms"] or 0.0,
            cpu_seconds=cpu,
            db_cpu_seconds=db_cpu,
            machine_busy=machine_busy,
            **stalls_between(stalls_before, stalls_after),
        )
        self.runs.append(run)
        verdict = "ok" if run.sustained else "FAIL"
        print(
            f"  r{round_number} {kind:6} {server.name:22} {endpoint:8} {rate:6}/s "
            f"p99={run.p99_ms:7.2f} ms err={run.failed_rate:.3f} "
            f"dropped={run.dropped_iterations} busy={machine_busy:.0%} {verdict}",
            flush=True,
        )
        return run

    def step(self, server: Server, endpoint: str, rate: int, round_number: int) -> bool:
        run = self.k6(
            server,
            endpoint,
            rate,
            seconds=self.mode.step_seconds,
            kind="search",
            round_number=round_number,
        )
        return run.sustained

    def search_all(
        self, names: list[str], endpoint: str, hints: dict[str, int | None], round_number: int
    ) -> dict[str, int]:
        """Every server's search, one step each in turn (A B A B ...), so a burst of
        load from elsewhere on the machine hits every server alike."""
        searches = {
            name: bracket_search(
                hints[name] or self.mode.first_rates[endpoint],
                self.mode.max_steps,
                self.mode.refine_steps,
            )
            for name in names
        }
        pending = {name: next(search) for name, search in searches.items()}
        best: dict[str, int] = {}
        while pending:
            for name in list(pending):
                sustained = self.step(self.servers[name], endpoint, pending[name], round_number)
                try:
                    pending[name] = searches[name].send(sustained)
                except StopIteration as finished:
                    best[name] = finished.value
                    del pending[name]
        return best


def bracket_search(first: int, max_steps: int, refine_steps: int) -> Generator[int, bool, int]:
    """Yields the rates to try and is sent whether each was sustained; returns the
    highest sustained one. Brackets it by doubling or halving from `first`, then
    bisects in log space."""
    rate, best, failed = first, 0, None
    for _ in range(max_steps):
        if (yield rate):
            best = rate
        else:
            failed = rate
        if failed is None:
            rate *= 2
        elif best == 0:
            rate = max(rate // 2, 1)
        else:
            break
    for _ in range(refine_steps):
        if best == 0 or failed is None:
            break
        middle = int(math.sqrt(best * failed))
        if middle in (best, failed):
            break
        if (yield middle):
            best = middle
        else:
            failed = middle
    return best


def k6_version() -> str:
    output = subprocess.run(
        [str(BIN / "k6"), "version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return output.split()[1] if output else "unknown"


def in_process(bench: Bench, project: Path) -> dict[str, Any]:
    """Each round, per endpoint and server in turn: the rendered project's
    scripts/in_process.py with the server's settings (and the run's token, as k6 sends
    it). Returns µs of CPU per request (median, min, max of the rounds) per endpoint
    and server, and rendered minus baseline."""
    authorization = (
        authorization_file(bench.work / "authorization.txt", [bench.token]) if bench.token else None
    )
    figures: dict[tuple[str, str], list[float]] = {}
    for round_number in range(1, bench.mode.rounds + 1):
        for endpoint in ENDPOINTS:
            for name in [*SERVERS, *([LOGGING_OFF] if endpoint == "account" else [])]:
                server = bench.servers[name]
                result = bench.work / f"in-process-{uuid.uuid4().hex}.json"
                with (bench.work / f"in-process-{name}.log").open("ab") as log:
                    subprocess.run(
                        in_process_command(
                            project,
                            name,
                            endpoint,
                            requests=bench.mode.in_process_requests,
                            first_account=bench.first_account,
                            result=result,
                            authorization=authorization,
                        ),
                        env=server.env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        check=True,
                        timeout=300,
                    )
                cpu_us = json.loads(result.read_text())["cpu_us_per_request"]
                figures.setdefault((endpoint, name), []).append(cpu_us)
                print(
                    f"  r{round_number} in-process {name:22} {endpoint:8} "
                    f"{cpu_us:7.1f} µs CPU/request",
                    flush=True,
                )
    summary: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        servers = {name: spread(values) for (ep, name), values in figures.items() if ep == endpoint}
        overhead = [
            rendered - baseline
            for rendered, baseline in zip(
                figures[endpoint, "rendered"], figures[endpoint, "baseline"], strict=True
            )
        ]
        summary[endpoint] = {
            "cpu_us_per_request": servers,
            "rendered_minus_baseline_us": spread(overhead),
        }
    return summary


def measure(bench: Bench) -> tuple[dict[tuple[str, str], list[int]], dict[str, int]]:
    """Each round: per endpoint, every server's search, step by step in turn, then
    every server at the endpoint's fixed rate. Returns the best rates per round and
    the fixed rates."""
    best: dict[tuple[str, str], list[int]] = {}
    fixed_rates: dict[str, int] = {}
    for round_number in range(1, bench.mode.rounds + 1):
        print(f"round {round_number}/{bench.mode.rounds}", flush=True)
        for endpoint in ENDPOINTS:
            names = [*SERVERS, *([LOGGING_OFF] if endpoint == "account" else [])]
            hints = {
                name: (best[name, endpoint][-1] if (name, endpoint) in best else None)
                for name in names
            }
            for name, rate in bench.search_all(names, endpoint, hints, round_number).items():
                best.setdefault((name, endpoint), []).append(rate)
            if endpoint not in fixed_rates:
                fixed_rates[endpoint] = fixed_rate(bench.runs, endpoint, best, names)
            for name in names:
                bench.k6(
                    bench.servers[name],
                    endpoint,
                    fixed_rates[endpoint],
                    seconds=bench.mode.fixed_seconds,
                    kind="fixed",
                    round_number=round_number,
                )
    return best, fixed_rates


def settled_stalls(server: Server) -> dict[str, dict[float, float]] | None:
    """The stall histograms once the server's sampler has recorded what came before:
    a worker records its collections' pauses at the sampler's next wake-up."""
    time.sleep(SAMPLER_CATCH_UP_SECONDS)
    return server.histograms(STALL_METRICS)


def stalls_between(
    before: dict[str, dict[float, float]] | None, after: dict[str, dict[float, float]] | None
) -> dict[str, Any]:
    """The Run fields of the stall metrics, from scrapes before and after a run."""
    if before is None or after is None:
        return {}
    lag_samples, lag_max_ms, lag_over_ms = grown_between(before[LOOP_LAG], after[LOOP_LAG])
    pauses, pause_max_ms, pause_over_ms = grown_between(before[GC_PAUSES], after[GC_PAUSES])
    return {
        "loop_lag_samples": lag_samples,
        "loop_lag_max_ms": lag_max_ms,
        "loop_lag_over_ms": lag_over_ms,
        "gc_pauses": pauses,
        "gc_pause_max_ms": pause_max_ms,
        "gc_pause_over_ms": pause_over_ms,
    }


def grown_between(
    before: dict[float, float], after: dict[float, float]
) -> tuple[int, float | None, float | None]:
    """A histogram's observations during the run (the +Inf bucket's increase); the
    smallest upper bound (ms) that holds all of them, None if none or past the last;
    and, when the largest fell past the last finite bound, that bound (ms): the
    longest stall was over it, which must not read as none measured."""
    grown = {bound: after[bound] - before.get(bound, 0.0) for bound in sorted(after)}
    count = grown.get(math.inf, 0.0)
    if not count:
        return 0, None, None
    largest = next((bound for bound, seen in grown.items() if seen >= count), math.inf)
    if largest != math.inf:
        return int(count), largest * 1000, None
    last = max((bound for bound in grown if bound != math.inf), default=0.0)
    return int(count), None, last * 1000


def fixed_rate(
    runs: list[Run], endpoint: str, best: dict[tuple[str, str], list[int]], names: list[str]
) -> int:
    """The rate at which the rendered service kept the machine FIXED_RATE_MACHINE_BUSY
    busy in the first round's search, interpolated between the sustained steps around
    it; never above what the slowest server sustained, so that every server holds it.
    Half that slowest rate when the search gives no two points to interpolate between;
    never under MIN_FIXED_RATE, even when a server sustained no step (the quick smoke's
    single one-second step can fail on a busy machine), as k6 refuses a rate of 0."""
    slowest = max(min(best[name, endpoint][0] for name in names), MIN_FIXED_RATE)
    points = sorted(
        (run.machine_busy, run.rate)
        for run in runs
        if run.server == "rendered" and run.endpoint == endpoint and run.kind == "search"
        if run.sustained
    )
    for (busy_low, rate_low), (busy_high, rate_high) in itertools.pairwise(points):
        if busy_low <= FIXED_RATE_MACHINE_BUSY <= busy_high and busy_high > busy_low:
            share = (FIXED_RATE_MACHINE_BUSY - busy_low) / (busy_high - busy_low)
            return min(round(rate_low + share * (rate_high - rate_low)), slowest)
    if points and points[-1][0] < FIXED_RATE_MACHINE_BUSY:  # never that busy while sustained
        return slowest
    return max(slowest // 2, MIN_FIXED_RATE)


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
