"""The worker as deployed: `python -m <package>.worker` in a process of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from .http_server import free_port

PACKAGE = "{{ cookiecutter.package_name }}"
STARTUP_SECONDS = 30.0


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    metrics_url: str
    log: IO[bytes]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=2) as response:  # noqa: S310
            text: str = response.read().decode()
            return text

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def _serving_metrics(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_worker(database_url: str, **settings: str) -> Iterator[WorkerProcess]:
    """Start a worker on this database (APP_* overrides in `settings`), yield it once
    its metrics listener answers, stop it (SIGKILL if a test has not ended it)."""
    port = free_port()
    own = {
        "APP_ENVIRONMENT": "test",
        "APP_DATABASE__URL": database_url,
        "APP_WORKER__METRICS_PORT": str(port),
        "APP_LOGGING__LEVEL": "info",
    }
    env = os.environ | settings | own
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", f"{PACKAGE}.worker"], env=env, stdout=log, stderr=log
        )
        worker = WorkerProcess(process, f"http://127.0.0.1:{port}/metrics", log)
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while not _serving_metrics(worker.metrics_url):
                if process.poll() is not None or time.monotonic() > deadline:
                    message = f"the worker did not start:\n{worker.output()}"
                    raise RuntimeError(message)
                time.sleep(0.05)
            yield worker
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
