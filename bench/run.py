"""Benchmark the rendered service against bare FastAPI and a raw asyncpg baseline, in one run.

    python bench/run.py            # the full run (3 rounds, well under 15 minutes on 2 cores)
    python bench/run.py --quick    # a smoke of the whole pipeline for CI (about a minute)

Renders the default project (run_checks=no), installs it, migrates a database of
its own on the PostgreSQL that DATABASE_URL names (default 127.0.0.1:5432), seeds
accounts, then starts four servers on 127.0.0.1 with the same number of workers:
the rendered service in production configuration, the same with request logging
off, bench/bare_fastapi.py (the framework's floor) and bench/baseline.py. Each
round runs, per endpoint and server in turn (A B A B ...), a bracketed search for
the highest sustainable constant arrival rate and one run at a fixed rate every
server holds. Writes bench/results/ results.json, results.md and rate_vs_p99.png.
Processes are killed and the database dropped on every exit path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

TEMPLATE = Path(__file__).resolve().parent.parent
BENCH = TEMPLATE / "bench"
BIN = Path(sys.executable).parent
PACKAGE = "ledger_api"  # the default project's package_name

# A rate is sustainable when all three hold (the definition).
MAX_ERROR_RATE = 0.01
MAX_P99_MS = 50.0
ENDPOINTS = ("account", "transfer", "ready")
# The rendered service, the framework's floor (bench/bare_fastapi.py) and the
# least a service can do (bench/baseline.py).
SERVERS = ("rendered", "bare_fastapi", "baseline")
# The two hand-written apps, run by uvicorn from bench/ with BENCH_* settings.
BENCH_APPS = ("bare_fastapi", "baseline")
# Logging off is measured on the primary-key read only: it is the cheapest
# request, so logging's share of its cost is the largest.
LOGGING_OFF = "rendered_logging_off"
ACCOUNTS = 10_000
OPENING_BALANCE = 10**12
CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    """user + system clock ticks of each process (/proc/<pid>/stat fields 14 and 15)."""
    ticks = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def cpu_seconds_between(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU used in between; a process that started in between counts from zero."""
    return sum(ticks - before.get(pid, 0) for pid, ticks in after.items()) / CLK_TCK


async def backend_pids(database_url: str, application_name: str) -> list[int]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", application_name
        )
    finally:
        await connection.close()
    return [row["pid"] for row in rows]


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    log: Path
    application_name: str
    process: subprocess.Popen[bytes] | None = None
    start_to_ready_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        started = time.monotonic()
        with self.log.open("wb") as log:
            # A session of its own, so one killpg ends the supervisor and every worker.
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = started + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at startup; see {self.log}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/health/ready", timeout=1) as response,
            ):
                if response.status == 200:
                    self.start_to_ready_s = time.monotonic() - started
                    return
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} not ready within 30 s; see {self.log}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def pids(self) -> list[int]:
        """Every live process of the server's session: supervisor and workers."""
        assert self.process is not None
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError):
                # The session id is field 6; the command may contain spaces, so split after ")".
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == self.process.pid:
                    found.append(int(entry.name))
        return found

    def backend_pids(self, database_url: str) -> list[int]:
        """The PostgreSQL backends serving this server's connections (on this machine)."""
        return asyncio.run(backend_pids(database_url, self.application_name))

    def peak_rss_per_worker_mb(self) -> list[float]:
        """VmHWM (the kernel's peak resident set) of each uvicorn worker process."""
        peaks = []
        for pid in self.pids():
            with contextlib.suppress(OSError):
                if b"spawn_main" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    continue
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
        return peaks


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
    runs: list[Run] = field(default_factory=list)

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
            **os.environ,
            "K6_NO_USAGE_REPORT": "true",
            "BASE_URL": server.url,
            "ENDPOINT": endpoint,
            "RATE": str(rate),
            "DURATION": f"{seconds}s",
            "ACCOUNTS": str(ACCOUNTS),
            "FIRST_ACCOUNT": str(self.first_account),
            "RUN_ID": uuid.uuid4().hex,
            "SUMMARY_FILE": str(summary_file),
        }
        server_before = cpu_ticks(server.pids())
        db_before = cpu_ticks(server.backend_pids(self.database_url))
        subprocess.run(
            [str(BIN / "k6"), "run", "--quiet", "--no-color", str(BENCH / "scenario.js")],
            env=env,
            check=True,
            timeout=seconds + 60,
            stdout=subprocess.DEVNULL,
        )
        cpu = cpu_seconds_between(server_before, cpu_ticks(server.pids()))
        db_cpu = cpu_seconds_between(db_before, cpu_ticks(server.backend_pids(self.database_url)))
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
        )
        self.runs.append(run)
        verdict = "ok" if run.sustained else "FAIL"
        print(
            f"  r{round_number} {kind:6} {server.name:22} {endpoint:8} {rate:6}/s "
            f"p99={run.p99_ms:7.2f} ms err={run.failed_rate:.3f} "
            f"dropped={run.dropped_iterations} {verdict}",
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_command(command: list[str], cwd: Path, env: dict[str, str], timeout: int) -> None:
    print(f"$ {' '.join(command)}", flush=True)
    subprocess.run(command, cwd=cwd, env=env, check=True, timeout=timeout)


def render(work: Path) -> Path:
    run_command(
        [
            str(BIN / "cookiecutter"),
            str(TEMPLATE),
            "--no-input",
            "--output-dir",
            str(work),
            "run_checks=no",
            # Its clients send no token: the baselines have no authentication either.
            "auth=none",
        ],
        cwd=work,
        env=dict(os.environ),
        timeout=120,
    )
    (project,) = [path for path in work.iterdir() if (path / "backend").is_dir()]
    # The production dependency set, as in the image: the dev tools would be imported
    # at startup too (structlog, say, loads rich when it is installed).
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "UV_NO_DEV": "1"}
    run_command(["make", "install"], cwd=project, env=env, timeout=300)
    return project


def prepare(work: Path, url: str) -> tuple[Path, int]:
    """The default project rendered and installed in `work`, its database at `url`
    migrated and seeded: (the project, the first account's id)."""
    project = render(work)
    run_command(
        ["make", "init-db"],
        cwd=project,
        env={**os.environ, "APP_DATABASE__URL": url},
        timeout=120,
    )
    return project, asyncio.run(seed(url))


def database_urls() -> tuple[str, str]:
    """(maintenance URL, URL of a new uniquely named database) on DATABASE_URL's server."""
    base = urlsplit(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    name = f"bench_{uuid.uuid4().hex[:12]}"
    return urlunsplit(base._replace(path="/postgres")), urlunsplit(base._replace(path=f"/{name}"))


async def seed(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        first = await connection.fetchval(
            "INSERT INTO accounts (owner, currency, balance_minor) "
            "SELECT 'bench ' || n, 'EUR', $2 FROM generate_series(1, $1) AS n RETURNING id",
            ACCOUNTS,
            OPENING_BALANCE,
        )
        await connection.execute("ANALYZE")
        return int(await connection.fetchval("SELECT min(id) FROM accounts") or first)
    finally:
        await connection.close()


async def drop_database(maintenance_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    connection = await asyncpg.connect(maintenance_url)
    try:
        quoted = await connection.fetchval("SELECT quote_ident($1)", name)
        await connection.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await connection.close()


def pool_sizes(project: Path) -> tuple[str, str]:
    """The rendered pool's min and max size, so the baseline gets the same."""
    text = (project / "backend" / "configuration" / "base.yaml").read_text()
    sizes = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key in ("min_size", "max_size"):
            sizes[key] = value.strip()
    return sizes["min_size"], sizes["max_size"]


def servers(project: Path, url: str, workers: int, work: Path) -> dict[str, Server]:
    python = str(project / "backend" / ".venv" / "bin" / "python")
    pool_min, pool_max = pool_sizes(project)
    base_env = {key: value for key, value in os.environ.items() if not key.startswith("APP_")}
    rendered_env = {
        **base_env,
        "APP_ENVIRONMENT": "production",
        "APP_DATABASE__URL": url,
        "APP_SERVER__HOST": "127.0.0.1",
        "APP_METRICS__HOST": "127.0.0.1",
        "APP_SERVER__WORKERS": str(workers),
    }
    found = {}
    for name, extra in (("rendered", {}), (LOGGING_OFF, {"APP_LOGGING__LEVEL": "warning"})):
        port = free_port()
        # application.name is PostgreSQL's application_name: it finds each server's backends.
        application_name = f"bench-{name}"
        found[name] = Server(
            name,
            [python, "-m", PACKAGE],
            {
                **rendered_env,
                **extra,
                "APP_SERVER__PORT": str(port),
                "APP_METRICS__PORT": str(free_port()),
                "APP_APPLICATION__NAME": application_name,
            },
            port,
            work / f"{name}.log",
            application_name,
        )
    for name in BENCH_APPS:
        port = free_port()
        found[name] = Server(
            name,
            [
                python,
                "-m",
                "uvicorn",
                f"{name}:app",
                "--app-dir",
                str(BENCH),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            {
                **base_env,
                "BENCH_DATABASE_URL": url,
                "BENCH_POOL_MIN": pool_min,
                "BENCH_POOL_MAX": pool_max,
                "BENCH_APPLICATION_NAME": f"bench-{name}",
            },
            port,
            work / f"{name}.log",
            f"bench-{name}",
        )
    return found


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(
    bench: Bench, best: dict[tuple[str, str], list[int]], fixed_rates: dict[str, int]
) -> dict[str, Any]:
    endpoints: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        names = [*SERVERS, *([LOGGING_OFF] if endpoint == "account" else [])]
        entry: dict[str, Any] = {"fixed_rate": fixed_rates.get(endpoint), "servers": {}}
        for name in names:
            fixed = [
                r
                for r in bench.runs
                if r.server == name and r.endpoint == endpoint and r.kind == "fixed"
            ]
            entry["servers"][name] = {
                "max_sustained_rate": spread([float(rate) for rate in best[name, endpoint]]),
                "max_sustained_rate_per_round": best[name, endpoint],
                "fixed_rate_latency_ms": {
                    stat: spread([getattr(r, f"{stat}_ms") for r in fixed])
                    for stat in ("p50", "p95", "p99")
                },
                "cpu_seconds_per_1000_requests": spread(
                    [r.cpu_seconds / r.requests * 1000 for r in fixed if r.requests]
                ),
                "postgres_cpu_seconds_per_1000_requests": spread(
                    [r.db_cpu_seconds / r.requests * 1000 for r in fixed if r.requests]
                ),
            }
        for floor in BENCH_APPS:
            entry[f"ratio_rendered_to_{floor}"] = spread(
                [
                    rendered / other
                    for rendered, other in zip(
                        best["rendered", endpoint], best[floor, endpoint], strict=True
                    )
                    if other
                ]
            )
        if endpoint == "account":
            entry["ratio_logging_on_to_off"] = spread(
                [
                    on / off
                    for on, off in zip(
                        best["rendered", endpoint], best[LOGGING_OFF, endpoint], strict=True
                    )
                    if off
                ]
            )
        endpoints[endpoint] = entry
    return endpoints


def markdown(results: dict[str, Any]) -> str:
    def fmt(value: dict[str, float] | None, digits: int = 0) -> str:
        if value is None:
            return "n/a"
        return f"{value['median']:.{digits}f} ({value['min']:.{digits}f}–{value['max']:.{digits}f})"

    meta = results["meta"]
    lines = [
        "# Benchmark: rendered service vs bare FastAPI and a raw asyncpg baseline "
        f"({meta['mode']})",
        "",
        f"{meta['date']} · {meta['cpus']} CPUs (shared with other work: figures are ratios of "
        f"alternating runs) · {meta['workers']} workers each · pool {meta['pool']} per worker · "
        f"{meta['rounds']} rounds · k6 {meta['k6']} constant-arrival-rate, "
        f"{meta['step_seconds']} s per search step, {meta['fixed_seconds']} s at the fixed rate.",
        "",
        "Max rate: the highest constant arrival rate with < 1% errors, p99 < 50 ms and no "
        "dropped iterations; median of the rounds (min–max). CPU: seconds of the server's "
        "processes (supervisor and workers), and of the PostgreSQL backends serving its "
        "connections, per 1,000 requests at the fixed rate.",
        "",
        "| endpoint | server | max rate (req/s) | p50 / p95 / p99 at fixed rate (ms) "
        "| CPU s / 1k req | PostgreSQL CPU s / 1k req |",
        "|---|---|---|---|---|---|",
    ]
    for endpoint, entry in results["endpoints"].items():
        for name, server in entry["servers"].items():
            latency = server["fixed_rate_latency_ms"]
            lines.append(
                f"| {endpoint} @ {entry['fixed_rate']}/s | {name} | "
                f"{fmt(server['max_sustained_rate'])} | "
                f"{' / '.join(fmt(latency[s], 1) for s in ('p50', 'p95', 'p99'))} | "
                f"{fmt(server['cpu_seconds_per_1000_requests'], 3)} | "
                f"{fmt(server['postgres_cpu_seconds_per_1000_requests'], 3)} |"
            )
    lines += [
        "",
        "In process (bench/in_process.py): each app called directly, 8 requests at a time, "
        "no HTTP server and no k6; µs of CPU per request, median of the rounds (min–max).",
        "",
        "| endpoint | rendered | rendered, logging off | bare FastAPI | baseline "
        "| rendered − baseline |",
        "|---|---|---|---|---|---|",
    ]
    for endpoint, entry in results["in_process"].items():
        cpu = entry["cpu_us_per_request"]
        lines.append(
            f"| {endpoint} | {fmt(cpu['rendered'])} | {fmt(cpu.get(LOGGING_OFF))} | "
            f"{fmt(cpu['bare_fastapi'])} | {fmt(cpu['baseline'])} | "
            f"{fmt(entry['rendered_minus_baseline_us'])} |"
        )
    lines += ["", "| measure | median (min–max) | goal |", "|---|---|---|"]
    goals = {
        "bare_fastapi": {"account": "≥ 1.0", "transfer": "≥ 1.0", "ready": "—"},
        "baseline": {"account": "≥ 0.7", "transfer": "≥ 0.7", "ready": "—"},
    }
    for endpoint, entry in results["endpoints"].items():
        for floor in BENCH_APPS:
            lines.append(
                f"| {endpoint}: rendered / {floor} max rate | "
                f"{fmt(entry[f'ratio_rendered_to_{floor}'], 2)} | {goals[floor][endpoint]} |"
            )
    logging_ratio = results["endpoints"]["account"].get("ratio_logging_on_to_off")
    lines.append(f"| account: logging on / off max rate | {fmt(logging_ratio, 2)} | ≥ 0.90 |")
    for name, server in results["servers"].items():
        ready = server["start_to_ready_s"]
        rss = max(server["peak_rss_per_worker_mb"], default=0.0)
        lines.append(f"| {name}: start to ready (s) | {ready:.2f} | ≤ 2 |")
        lines.append(f"| {name}: peak RSS per worker (MB) | {rss:.1f} | ≤ 120 |")
    return "\n".join(lines) + "\n"


def chart(runs: list[Run], path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - only the chart needs it, and headless

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(1, len(ENDPOINTS), figsize=(5 * len(ENDPOINTS), 4))
    colors = {
        "rendered": "tab:blue",
        "bare_fastapi": "tab:purple",
        "baseline": "tab:orange",
        LOGGING_OFF: "tab:green",
    }
    for axis, endpoint in zip(axes, ENDPOINTS, strict=True):
        for name, color in colors.items():
            points = sorted(
                (r.rate, r.p99_ms)
                for r in runs
                if r.server == name and r.endpoint == endpoint and r.requests
            )
            if points:
                axis.plot(
                    *zip(*points, strict=True),
                    "o-",
                    color=color,
                    label=name,
                    markersize=3,
                    linewidth=0.8,
                    alpha=0.8,
                )
        axis.axhline(MAX_P99_MS, color="grey", linestyle="--", linewidth=0.8)
        axis.set_title(endpoint)
        axis.set_xlabel("constant arrival rate (req/s)")
        axis.set_ylabel("p99 (ms)")
        axis.set_yscale("log")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def k6_version() -> str:
    output = subprocess.run(
        [str(BIN / "k6"), "version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return output.split()[1] if output else "unknown"


def in_process_command(
    python: str, server: str, endpoint: str, *, requests: int, first_account: int, result: Path
) -> list[str]:
    """bench/in_process.py for one server (by its name in SERVERS or LOGGING_OFF)."""
    return [
        python,
        str(BENCH / "in_process.py"),
        "--server",
        "rendered" if server == LOGGING_OFF else server,
        "--package",
        PACKAGE,
        "--endpoint",
        endpoint,
        "--requests",
        str(requests),
        "--first-account",
        str(first_account),
        "--accounts",
        str(ACCOUNTS),
        "--result",
        str(result),
    ]


def in_process(bench: Bench, project: Path) -> dict[str, Any]:
    """Each round, per endpoint and server in turn: bench/in_process.py with the
    server's interpreter and settings. Returns µs of CPU per request (median, min,
    max of the rounds) per endpoint and server, and rendered minus baseline."""
    python = str(project / "backend" / ".venv" / "bin" / "python")
    figures: dict[tuple[str, str], list[float]] = {}
    for round_number in range(1, bench.mode.rounds + 1):
        for endpoint in ENDPOINTS:
            for name in [*SERVERS, *([LOGGING_OFF] if endpoint == "account" else [])]:
                server = bench.servers[name]
                result = bench.work / f"in-process-{uuid.uuid4().hex}.json"
                with (bench.work / f"in-process-{name}.log").open("ab") as log:
                    subprocess.run(
                        in_process_command(
                            python,
                            name,
                            endpoint,
                            requests=bench.mode.in_process_requests,
                            first_account=bench.first_account,
                            result=result,
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
                # Half of what the slowest server sustained in the first round: all hold it.
                slowest = min(best[name, endpoint][0] for name in names)
                fixed_rates[endpoint] = max(slowest // 2, 10)
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


def stop_on_sigterm(_signal: int, _frame: object) -> None:
    """SIGTERM (a CI timeout, say) unwinds through the cleanup like Ctrl-C does."""
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round: a smoke for CI")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per server")
    parser.add_argument(
        "--output",
        type=Path,
        default=BENCH / "results",
        help="where results.json, results.md and rate_vs_p99.png go",
    )
    arguments = parser.parse_args()
    mode = QUICK if arguments.quick else FULL
    arguments.output.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    started = time.monotonic()
    maintenance_url, url = database_urls()
    running: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        work = Path(directory)
        try:
            project, first_account = prepare(work, url)
            found = servers(project, url, arguments.workers, work)
            for server in found.values():
                running.append(server)
                server.start()
                print(f"{server.name} ready in {server.start_to_ready_s:.2f} s", flush=True)
            bench = Bench(mode, found, first_account, work, url)
            for server in found.values() if mode.warmup_seconds else ():
                for endpoint in ENDPOINTS:
                    bench.k6(
                        server,
                        endpoint,
                        mode.first_rates[endpoint],
                        seconds=mode.warmup_seconds,
                        kind="warmup",
                        round_number=0,
                    )
            bench.runs.clear()
            best, fixed_rates = measure(bench)
            app_alone = in_process(bench, project)
            results: dict[str, Any] = {
                "meta": {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "mode": "quick" if arguments.quick else "full",
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "k6": k6_version(),
                    "workers": arguments.workers,
                    "pool": "{}–{}".format(*pool_sizes(project)),
                    "rounds": mode.rounds,
                    "step_seconds": mode.step_seconds,
                    "fixed_seconds": mode.fixed_seconds,
                    "criteria": {
                        "max_error_rate": MAX_ERROR_RATE,
                        "max_p99_ms": MAX_P99_MS,
                        "dropped_iterations": 0,
                    },
                },
                "servers": {
                    server.name: {
                        "start_to_ready_s": server.start_to_ready_s,
                        "peak_rss_per_worker_mb": server.peak_rss_per_worker_mb(),
                    }
                    for server in found.values()
                },
                "endpoints": summarize(bench, best, fixed_rates),
                "in_process": app_alone,
                "runs": [run.__dict__ for run in bench.runs],
            }
            results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
            (arguments.output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
            (arguments.output / "results.md").write_text(markdown(results))
            chart(bench.runs, arguments.output / "rate_vs_p99.png")
            print((arguments.output / "results.md").read_text())
            print(f"done in {results['meta']['elapsed_s']} s; results in {arguments.output}")
        finally:
            for server in running:
                server.stop()
            asyncio.run(drop_database(maintenance_url, url))


if __name__ == "__main__":
    main()
