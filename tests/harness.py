"""Real parts for the fault tests: a throwaway PostgreSQL cluster that can be stopped
and started, the rendered service as deployed (`python -m <package>`, uvicorn
workers), and a TCP relay that records what the service sends to the database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from . import identity_provider

PROBLEM = "application/problem+json"
# The machine's shared PostgreSQL (trust): tests create databases of their own on it.
SERVER = "postgresql://postgres@127.0.0.1:5432"

# tools.md: without the background-networking flags Chromium keeps calling hosts the
# closed network refuses; no sandbox, as the suite runs as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def k6_smoke_command(k6: Path, base_url: str, duration: str, *options: str) -> list[str]:
    """The rendered k6/load_test.js's smoke scenario against `base_url`."""
    return [
        str(k6),
        "run",
        "--quiet",
        "-e",
        "SCENARIO=smoke",
        "-e",
        f"DURATION={duration}",
        "-e",
        f"BASE_URL={base_url}",
        *options,
        "k6/load_test.js",
    ]


# A password the service is given and must never print (tests/test_reliability.py).
PASSWORD = "Reliability-Secret-7Qx"
STARTUP_SECONDS = 30.0
# Four times the rendered log writer's flush interval (FLUSH_INTERVAL_SECONDS); a
# busy machine may delay its thread, so a log still growing is waited for longer.
LOG_QUIET_SECONDS = 0.2
LOG_WAIT_SECONDS = 5.0
READ_CHUNK_BYTES = 4096


TEMPLATE = Path(__file__).resolve().parents[1]


def installed_project(output: Path, *answers: str) -> Path:
    """The template rendered into `output` (checks off) and `make install`ed."""
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", str(TEMPLATE), "--no-input",
         "--output-dir", str(output), "run_checks=no", *answers],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (project,) = output.iterdir()
    make(project, "install")
    return project


def make(project: Path, target: str, **environment: str) -> None:
    """A target of the project's Makefile, with uv from this environment."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    result = subprocess.run(
        ["make", target],
        cwd=project,
        env=os.environ | {"PATH": path, **environment},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def server_admin(statement: str) -> None:
    """One statement on the shared server's `postgres` database (CREATE/DROP DATABASE)."""
    connection = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def migrated_database(project: Path, prefix: str, **environment: str) -> Iterator[str]:
    """A database of its own on the shared server, migrated by the project's
    `make init-db` (with `environment`, APP_* settings); its URL. Dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(server_admin(f"CREATE DATABASE {name}"))
    try:
        make(project, "init-db", **environment, APP_DATABASE__URL=f"{SERVER}/{name}")
        yield f"{SERVER}/{name}"
    finally:
        asyncio.run(server_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def server_bindir() -> Path | None:
    """PostgreSQL's server binaries (initdb, pg_ctl), if installed."""
    if shutil.which("pg_config") is None:
        return None
    bindir = subprocess.run(
        ["pg_config", "--bindir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path(bindir) if (Path(bindir) / "initdb").exists() else None


def as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class ThrowawayCluster:
    """A PostgreSQL cluster of its own on a free 127.0.0.1 port, with password
    authentication over TCP, so that stopping it hurts nobody else."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="reliability-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self.data = self.root / "data"
        self.port = free_port()

    def url(self, database: str, password: str = PASSWORD) -> str:
        return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            as_server_user([str(self.bindir / command[0]), *command[1:]]),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def create(self) -> None:
        password_file = self.root / "password"
        password_file.write_text(PASSWORD)
        if os.geteuid() == 0:
            shutil.chown(password_file, "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-E", "UTF8",
            "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={password_file}",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=60"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w",
                  "-o", options, "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Service:
    """The rendered service started as its image starts it, on a free port."""

    project: Path
    environment: dict[str, str]
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    # Bytes per second the service's stdout (a pipe) is read at, like a log collector
    # falling behind; None: stdout goes straight to the log file.
    reader_bytes_per_second: int | None = None
    log_path: Path = field(init=False)
    process: subprocess.Popen[bytes] | None = None
    _reader: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.log_path = Path(tempfile.mkstemp(prefix="service-", suffix=".log")[1])

    @property
    def auth_token(self) -> str | None:
        """A bearer token the service trusts; None if the project has no auth."""
        return identity_provider.project_token(self.project)

    @property
    def auth_headers(self) -> dict[str, str]:
        """What requests to the ledger carry: the Authorization header, if it has auth."""
        token = self.auth_token
        return {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def package(self) -> str:
        return next((self.project / "backend" / "src").iterdir()).name

    def start(self) -> None:
        env = os.environ | {
            "APP_ENVIRONMENT": "production",
            "APP_CONFIG_DIR": str(self.project / "backend" / "configuration"),
            "APP_SERVER__HOST": "127.0.0.1",
            "APP_SERVER__PORT": str(self.port),
            "APP_METRICS__HOST": "127.0.0.1",
            "APP_METRICS__PORT": str(self.metrics_port),
            "PROMETHEUS_MULTIPROC_DIR": str(self.log_path.with_suffix(".metrics")),
            **identity_provider.service_environment(self.project),
            **self.environment,
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(self.project / "backend" / ".venv" / "bin" / "python"), "-m", self.package],
                cwd=self.project / "backend",
                env=env,
                stdout=log if self.reader_bytes_per_second is None else subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        if self.reader_bytes_per_second is not None:
            self._reader = threading.Thread(target=self._read_slowly, daemon=True)
            self._reader.start()
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.live():
            assert self.process.poll() is None, f"the service exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"the service did not start:\n{self.log()}"
            time.sleep(0.1)

    def _read_slowly(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        assert self.reader_bytes_per_second is not None
        pause = READ_CHUNK_BYTES / self.reader_bytes_per_second
        with self.log_path.open("ab") as log:
            while chunk := os.read(self.process.stdout.fileno(), READ_CHUNK_BYTES):
                log.write(chunk)
                log.flush()
                time.sleep(pause)

    def live(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health/live", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def log(self) -> str:
        """Everything logged so far. A running service's log writer writes every
        50 ms (log_writer.py): the lines of requests just answered are waited for,
        until the log has not grown for LOG_QUIET_SECONDS (at most LOG_WAIT_SECONDS)."""
        deadline = time.monotonic() + LOG_WAIT_SECONDS
        size = -1
        while self.process is not None and self.process.poll() is None:
            previous, size = size, self.log_path.stat().st_size
            if size == previous or time.monotonic() > deadline:
                break
            time.sleep(LOG_QUIET_SECONDS)
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> int:
        """SIGTERM, as an orchestrator stops a container; the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=60)
        self.log_path.unlink(missing_ok=True)
        shutil.rmtree(self.log_path.with_suffix(".metrics"), ignore_errors=True)


@contextlib.contextmanager
def running(project: Path, environment: dict[str, str]) -> Iterator[Service]:
    service = Service(project, environment)
    try:
        service.start()
        yield service
    finally:
        service.stop()


class StartupRecorder:
    """Relays 127.0.0.1:<port> to the database and keeps the first bytes each client
    connection sends: PostgreSQL's StartupMessage, which carries the session settings
    (asyncpg's server_settings). Runs its own event loop in a thread."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.openings: list[bytes] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> StartupRecorder:
        self._thread.start()
        assert self._ready.wait(10), "the relay did not start"
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._relay, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    async def _relay(self, client: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        server, server_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.openings.append(b"")
        index = len(self.openings) - 1

        def record(data: bytes) -> None:
            if len(self.openings[index]) < 4096:
                self.openings[index] += data

        await asyncio.gather(
            _pipe(client, server_out, record), _pipe(server, client_out), return_exceptions=True
        )


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    tap: Callable[[bytes], None] | None = None,
) -> None:
    """Copy until end of stream, then close the other side: a peer that waits for
    the connection to close (asyncpg after its Terminate message) sees it close."""
    try:
        while data := await reader.read(65536):
            if tap is not None:
                tap(data)
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


def startup_parameters(opening: bytes) -> dict[str, str]:
    """The parameters of the StartupMessage (protocol 3.0) in a connection's first
    bytes, after the optional 8-byte SSLRequest (which the cluster declines)."""
    protocol_3 = (3 << 16).to_bytes(4, "big")
    start = opening.find(protocol_3)
    assert start >= 4, f"no StartupMessage in {opening!r}"
    length = int.from_bytes(opening[start - 4 : start], "big")
    fields = opening[start + 4 : start - 4 + length].split(b"\0")
    pairs = zip(fields[0::2], fields[1::2], strict=False)
    return {name.decode(): value.decode() for name, value in pairs if name}


class PgBouncer:
    """Debian's pgbouncer on a free 127.0.0.1 port, in transaction mode, in front of one
    database of a server (trust authentication), as database `alias`; its admin console
    (PAUSE, RESUME, KILL, RECONNECT) through psql. Runs as the postgres user: pgbouncer
    refuses to run as root."""

    def __init__(self, server_port: int, database: str, alias: str, pool_size: int) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self.port = free_port()
        self.alias = alias
        self.log_path = self.root / "pgbouncer.log"
        (self.root / "userlist.txt").write_text('"postgres" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"{alias} = host=127.0.0.1 port={server_port} dbname={database} user=postgres\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.root / 'userlist.txt'}\n"
            "admin_users = postgres\npool_mode = transaction\n"
            f"default_pool_size = {pool_size}\nmax_client_conn = 500\n"
            f"logfile = {self.log_path}\n"
        )
        if os.geteuid() == 0:
            for path in (self.root, *self.root.iterdir()):
                shutil.chown(path, "postgres")
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{self.alias}"

    def __enter__(self) -> PgBouncer:
        self.process = subprocess.Popen(
            as_server_user(["pgbouncer", str(self.root / "pgbouncer.ini")]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return self
            assert self.process.poll() is None, f"pgbouncer exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"pgbouncer did not start:\n{self.log()}"
            time.sleep(0.1)

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def admin(self, command: str) -> None:
        """A command of the admin console, e.g. `PAUSE app`; returns once it is done."""
        result = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d",
             "pgbouncer", "-X", "-q", "-c", command],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM, response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def assert_shed(response: httpx.Response) -> None:
    """503 problem+json with a Retry-After of whole seconds."""
    assert_problem(response, 503)
    assert re.fullmatch(r"[1-9]\d*", response.headers.get("retry-after", "")), response.headers


@dataclass(frozen=True)
class Outcome:
    started: float
    ended: float
    response: httpx.Response | None
    error: str | None = None

    @property
    def seconds(self) -> float:
        return self.ended - self.started


async def timed_get(client: httpx.AsyncClient, path: str) -> Outcome:
    started = time.monotonic()
    try:
        response = await client.get(path)
    except httpx.TransportError as error:
        return Outcome(started, time.monotonic(), None, repr(error))
    return Outcome(started, time.monotonic(), response)


async def keep_requesting(
    client: httpx.AsyncClient, path: str, stop: asyncio.Event, outcomes: list[Outcome]
) -> None:
    while not stop.is_set():
        outcomes.append(await timed_get(client, path))
        if outcomes[-1].error:
            await asyncio.sleep(0.05)  # refused: the server is going away
