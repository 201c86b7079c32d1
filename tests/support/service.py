"""The rendered service started as its image starts it (`python -m <package>`,
production settings, uvicorn workers) on free ports, and polled until it answers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from . import identity_provider
from .commands import make, run, with_tools
from .databases import drop_database_at, unique_name
from .polling import wait_until, wait_until_answering
from .ports import free_port
from .rendering import baked, package_of

# A service compiles its modules at each start here (PYTHONDONTWRITEBYTECODE is set on
# our machines): with the suite's other workers busy, a start took 22 s in review.
STARTUP_SECONDS = 60.0
# Four times the rendered log writer's flush interval (FLUSH_INTERVAL_SECONDS); a
# busy machine may delay its thread, so a log still growing is waited for longer.
LOG_QUIET_SECONDS = 0.2
LOG_WAIT_SECONDS = 5.0
READ_CHUNK_BYTES = 4096
READY_SECONDS = 60


def app_variables(**settings: object) -> dict[str, str]:
    """APP_* variables from settings by their path: `database__pool__max_size=2`."""
    return {f"APP_{key.upper()}": str(value) for key, value in settings.items()}


def production_environment(port: int, metrics_port: int) -> dict[str, str]:
    """The image's settings, but listening on 127.0.0.1 on the given ports."""
    return {
        "APP_ENVIRONMENT": "production",
        "APP_SERVER__HOST": "127.0.0.1",
        "APP_SERVER__PORT": str(port),
        "APP_METRICS__HOST": "127.0.0.1",
        "APP_METRICS__PORT": str(metrics_port),
    }


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
    # If set, the reader keeps that rate in bursts, as a collector shipping every few
    # seconds does: it takes this many seconds' worth at once, then pauses as long.
    reader_burst_seconds: float | None = None
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
        """What requests to the API carry: the Authorization header, if it has auth."""
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
        return package_of(self.project)

    def start(self) -> None:
        env = (
            os.environ
            | production_environment(self.port, self.metrics_port)
            | {
                "APP_CONFIG_DIR": str(self.project / "backend" / "configuration"),
                "PROMETHEUS_MULTIPROC_DIR": str(self.log_path.with_suffix(".metrics")),
                **identity_provider.service_environment(self.project),
                **self.environment,
            }
        )
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
        wait_until(
            self.live,
            STARTUP_SECONDS,
            "the service starting",
            process=self.process,
            output=self.log,
        )

    def _read_slowly(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        assert self.reader_bytes_per_second is not None
        burst = READ_CHUNK_BYTES
        if self.reader_burst_seconds is not None:
            burst = int(self.reader_bytes_per_second * self.reader_burst_seconds)
        pause = burst / self.reader_bytes_per_second
        taken = 0
        with self.log_path.open("ab") as log:
            while chunk := os.read(self.process.stdout.fileno(), READ_CHUNK_BYTES):
                log.write(chunk)
                log.flush()
                taken += len(chunk)
                if taken >= burst:
                    taken = 0
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


@contextlib.contextmanager
def running_worker(project: Path, environment: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """The rendered project's job worker (`python -m <package>.worker`) with the
    service's production settings and `environment` on top, until the block ends
    (SIGTERM); its output in a temporary log, printed if it exited on its own."""
    env = (
        os.environ
        | production_environment(free_port(), free_port())
        | {"APP_CONFIG_DIR": str(project / "backend" / "configuration")}
        | identity_provider.service_environment(project)
        | {"APP_WORKER__METRICS_PORT": str(free_port())}
        | environment
    )
    log_path = Path(tempfile.mkstemp(prefix="worker-", suffix=".log")[1])
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(project / "backend" / ".venv" / "bin" / "python"),
                "-m",
                f"{package_of(project)}.worker",
            ],
            cwd=project / "backend",
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        exited = process.poll()
        if exited is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        else:
            print(f"the worker exited ({exited}):\n{log_path.read_text(errors='replace')[-4000:]}")
        log_path.unlink(missing_ok=True)


@contextlib.contextmanager
def serve_rendered(
    cookies_session: Any, extra_context: dict[str, str], service_env: dict[str, str] | None = None
) -> Iterator[tuple[dict[str, str], Path, str]]:
    """A rendered project, installed and migrated into a database of its own (the
    project's own scripts/resolve_database.py finds the server), served as the image
    serves it, with `service_env` on top, until it is ready; yields its answers,
    directory and base URL."""
    answers, project = baked(cookies_session, extra_context)
    env = with_tools()
    make(project, "install", PYTHON=sys.executable)
    command = [sys.executable, "scripts/resolve_database.py", "--database", unique_name("k6")]
    resolved = run(command, project)
    assert resolved.returncode == 0, f"no PostgreSQL for the service: {resolved.stderr}"
    url = resolved.stdout.strip()
    env["APP_DATABASE__URL"] = url
    try:
        make(project, "init-db", APP_DATABASE__URL=url)
        port = free_port()
        log_path = project / "service.log"
        with log_path.open("wb") as log:
            service = subprocess.Popen(
                [str(project / "backend/.venv/bin/python"), "-m", answers["package_name"]],
                cwd=project,
                env=env
                | production_environment(port, free_port())
                | identity_provider.service_environment(project)
                | (service_env or {}),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_answering(
                f"{base_url}/health/ready",
                READY_SECONDS,
                "the service becoming ready",
                process=service,
                output=log_path.read_text,
                interval=0.2,
            )
            yield answers, project, base_url
        finally:
            service.terminate()
            service.wait(timeout=60)
    finally:
        drop_database_at(url)
