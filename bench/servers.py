"""The servers of a benchmark run and what they cost: the default project rendered
(with the default answers, so auth=oidc), installed, migrated and seeded; the four
servers' commands and settings, started and stopped; their processes' CPU time (from
/proc) and their PostgreSQL backends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from identity_provider import SUBJECT, IdentityProvider

TEMPLATE = Path(__file__).resolve().parent.parent
BENCH = TEMPLATE / "bench"
BIN = Path(sys.executable).parent
PACKAGE = "ledger_api"  # the default project's package_name
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


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    """user + system clock ticks of each process (/proc/<pid>/stat fields 14 and 15)."""
    ticks = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine since boot, from /proc/stat's
    first line: user, nice, system, idle, iowait, irq, softirq. Steal (time the
    hypervisor gave elsewhere) is in neither: it is not this machine's to use."""
    line = Path("/proc/stat").read_text().split("\n", 1)[0]
    user, nice, system, idle, iowait, irq, softirq = (int(v) for v in line.split()[1:8])
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait


def machine_busy_between(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU time (every core) that was busy in between."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0


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

    @property
    def exports_metrics(self) -> bool:
        """The rendered servers do, on a listener of their own; the hand-written ones not."""
        return "APP_METRICS__PORT" in self.env

    def histograms(self, names: tuple[str, ...]) -> dict[str, dict[float, float]] | None:
        """The rendered service's histograms of these names, each summed over its
        workers and label sets (cumulative count per upper bound, in seconds), from one
        scrape of its metrics listener; None for the hand-written apps, which have none.
        Raises if one is missing: a renamed metric would otherwise read as no stalls."""
        if not self.exports_metrics:
            return None
        port = self.env["APP_METRICS__PORT"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        found: dict[str, dict[float, float]] = {name: {} for name in names}
        for line in text.splitlines():
            name, bucket, rest = line.partition("_bucket{")
            if bucket and name in found:
                labels, value = rest.rsplit(" ", 1)
                bound = float(labels.split('le="', 1)[1].split('"', 1)[0])
                found[name][bound] = found[name].get(bound, 0.0) + float(value)
        if missing := [name for name, buckets in found.items() if not buckets]:
            msg = f"{self.name} no longer exports {', '.join(missing)}"
            raise RuntimeError(msg)
        return found

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_command(command: list[str], cwd: Path, env: dict[str, str], timeout: int) -> None:
    print(f"$ {' '.join(command)}", flush=True)
    subprocess.run(command, cwd=cwd, env=env, check=True, timeout=timeout)


def render(work: Path, *answers: str) -> Path:
    """The default project (with `answers` as key=value on top) rendered into `work`
    and installed with the image's dependency set."""
    run_command(
        [
            str(BIN / "cookiecutter"),
            str(TEMPLATE),
            "--no-input",
            "--output-dir",
            str(work),
            "run_checks=no",
            *answers,
        ],
        cwd=work,
        env=dict(os.environ),
        timeout=120,
    )
    (project,) = [path for path in work.iterdir() if (path / "backend").is_dir()]
    # The production dependency set, as in the image: the dev tools would be imported
    # at startup too (structlog, say, loads rich when it is installed). Compiled to
    # bytecode, as in the image (UV_COMPILE_BYTECODE; the project's own modules too,
    # which the image installs compiled): where PYTHONDONTWRITEBYTECODE is set, every
    # start would otherwise compile every module again, in each process (start to
    # ready 3.3 s rather than 1.6 s on 2 cores), which no deployment pays.
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "UV_NO_DEV": "1",
        "UV_COMPILE_BYTECODE": "1",
    }
    run_command(["make", "install"], cwd=project, env=env, timeout=300)
    python = project / "backend" / ".venv" / "bin" / "python"
    run_command(
        [str(python), "-m", "compileall", "-q", "backend/src"], cwd=project, env=env, timeout=120
    )
    return project


def prepare(work: Path, url: str) -> tuple[Path, int]:
    """The default project rendered and installed in `work`, its database at `url`
    migrated and seeded with accounts held by the benchmark's token's subject: (the
    project, the first account's id)."""
    project = render(work)
    run_command(
        ["make", "init-db"],
        cwd=project,
        env={**os.environ, "APP_DATABASE__URL": url},
        timeout=120,
    )
    return project, asyncio.run(seed(url, SUBJECT))


def database_urls() -> tuple[str, str]:
    """(maintenance URL, URL of a new uniquely named database) on DATABASE_URL's server."""
    base = urlsplit(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    name = f"bench_{uuid.uuid4().hex[:12]}"
    return urlunsplit(base._replace(path="/postgres")), urlunsplit(base._replace(path=f"/{name}"))


async def seed(url: str, holder: str | None = None) -> int:
    """ACCOUNTS accounts held by `holder` (a token's subject; None for a project
    without authentication, whose accounts have no holder column) and a history of
    transfers between them, analyzed; returns the first account's id.

    The history is there for the planner: with `transfers` analyzed empty, a backend
    plans the foreign-key check of each ledger entry (`transfers.id`) as a sequential
    scan and keeps that plan, and where autovacuum is off (as on our machines) nothing
    analyzes again, so a transfer cost more the longer a run lasted, and more for the
    server whose connections planned first (1.5 sequential scans per transfer for the
    rendered service, 0.15 for bare FastAPI, in one run). Each account sends one
    transfer and receives one, so every balance still equals its entries' sum."""
    connection = await asyncpg.connect(url)
    try:
        held = [] if holder is None else [holder]
        column, value = (", holder", ", $3") if held else ("", "")
        first = await connection.fetchval(
            f"INSERT INTO accounts (owner, currency, balance_minor{column}) "
            f"SELECT 'bench ' || n, 'EUR', $2{value} FROM generate_series(1, $1) AS n RETURNING id",
            ACCOUNTS,
            OPENING_BALANCE,
            *held,
        )
        first = int(await connection.fetchval("SELECT min(id) FROM accounts") or first)
        await connection.execute(
            """
            WITH moved AS (
                INSERT INTO transfers (from_account_id, to_account_id, amount_minor, currency)
                SELECT $1 + n, $1 + (n + 1) % $2, 1, 'EUR' FROM generate_series(0, $2 - 1) AS n
                RETURNING id, from_account_id, to_account_id
            )
            INSERT INTO ledger_entries (account_id, transfer_id, kind, amount_minor)
            SELECT from_account_id, id, 'debit', -1 FROM moved
            UNION ALL
            SELECT to_account_id, id, 'credit', 1 FROM moved
            """,
            first,
            ACCOUNTS,
        )
        await connection.execute("ANALYZE")
        return first
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


def servers(
    project: Path, url: str, workers: int, work: Path, provider: IdentityProvider | None = None
) -> dict[str, Server]:
    """Each server's command and settings; the rendered ones trust `provider` (needed
    when the project has authentication: production refuses the development key)."""
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
        **(provider.service_environment() if provider else {}),
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


def in_process_command(
    project: Path,
    server: str,
    endpoint: str,
    *,
    requests: int,
    first_account: int,
    result: Path,
    warmup: int | None = None,
    instructions: bool = False,
    authorization: Path | None = None,
) -> list[str]:
    """The rendered project's own scripts/in_process.py (what its `make bench-gate`
    runs), with its interpreter, for one server (by its name in SERVERS or
    LOGGING_OFF): the two hand-written apps are imported from bench/ by name. With
    `authorization` (a file of Authorization header values), the ledger's requests
    carry them; readiness, which a prober calls without credentials, does not."""
    app = [] if server in ("rendered", LOGGING_OFF) else ["--app", f"{server}:app"]
    return [
        str(project / "backend" / ".venv" / "bin" / "python"),
        str(project / "scripts" / "in_process.py"),
        *app,
        *(["--app-dir", str(BENCH)] if app else []),
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
        *([] if warmup is None else ["--warmup", str(warmup)]),
        *(["--instructions"] if instructions else []),
        *(["--authorization", str(authorization)] if authorization and endpoint != "ready" else []),
    ]
