"""The service as deployed: `python -m <package>` with uvicorn on a free 127.0.0.1 port."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .http_server import free_port

PACKAGE = "{{ cookiecutter.package_name }}"
STARTUP_SECONDS = 30.0


def _live(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health/live", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_service(environment: dict[str, str], log_path: Path | None = None) -> Iterator[str]:
    """Start the service with these APP_* settings, yield its base URL, stop it. Its
    output goes to `log_path` if given (read it once the block is left)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    # The metrics listener on a free port, unless the test names one.
    metrics_port = {"APP_METRICS__PORT": str(free_port())}
    own = {"APP_SERVER__PORT": str(port), "APP_SERVER__WORKERS": "1"}
    env = os.environ | metrics_port | environment | own
    with log_path.open("w+b") if log_path else tempfile.TemporaryFile() as log:
        service = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", PACKAGE], env=env, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while not _live(base_url):
                if service.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    message = f"the service did not start:\n{log.read().decode(errors='replace')}"
                    raise RuntimeError(message)
                time.sleep(0.1)
            yield base_url
        finally:
            service.terminate()
            service.wait(timeout=30)
