"""`python -m {{ cookiecutter.package_name }}`: serve the API with uvicorn (uvloop, httptools)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import uvicorn

from .configuration import ConfigurationError, load_settings
from .telemetry import configure_logging

# metrics.py's variable; not imported from there: prometheus-client chooses its
# multiprocess mode when first imported, which must happen after this is set.
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_directory(port: int) -> None:
    """Give the workers an empty directory for their metric files: the given one or
    one per port under the temporary directory (one service per port, and no
    leftover directory per run), emptied: a previous run's values must not count."""
    default = Path(tempfile.gettempdir()) / f"{{ cookiecutter.package_name }}-metrics-{port}"
    directory = Path(os.environ.setdefault(MULTIPROCESS_DIR_ENV, str(default)))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def main() -> None:
    try:
        settings = load_settings()
    except ConfigurationError as error:
        print(f"{{ cookiecutter.package_name }}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.logging, settings.application.name)
    prepare_metrics_directory(settings.server.port)
    uvicorn.run(
        "{{ cookiecutter.package_name }}.startup:create_app",
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        workers=settings.server.workers,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=settings.server.graceful_shutdown_seconds,
        timeout_keep_alive=settings.server.keep_alive_seconds,
    )


if __name__ == "__main__":
    main()
