"""`python -m {{ cookiecutter.package_name }}`: serve the API with uvicorn (uvloop, httptools)."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import uvicorn

from .configuration import ConfigurationError, Settings, load_settings
from .processes import running
from .telemetry import configure_logging

# metrics.py's variable; not imported from there: prometheus-client chooses its
# multiprocess mode when first imported, which must happen after this is set.
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_DIR_PREFIX = "{{ cookiecutter.package_name }}-metrics-"


def prepare_metrics_directory() -> Path:
    """Give the workers an empty directory for their metric files: a previous run's
    values must not count. $PROMETHEUS_MULTIPROC_DIR if set (emptied, left in
    place); else a new one only this user can enter (mkdtemp: mode 0700, a name
    nobody can create first), removed at exit, or at the next start if this run is
    killed before its exit handlers run."""
    if configured := os.environ.get(MULTIPROCESS_DIR_ENV):
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        return directory
    _remove_directories_of_dead_runs()
    directory = Path(tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-"))
    os.environ[MULTIPROCESS_DIR_ENV] = str(directory)
    _remove_at_exit(directory)
    return directory


def _remove_at_exit(directory: Path) -> None:
    """At exit, and on SIGTERM: with one worker, uvicorn ends by raising the signal
    again once it has drained, under the handler it found at its start (this one),
    where the default one would end the process without running atexit."""
    atexit.register(shutil.rmtree, directory, ignore_errors=True)

    def remove_then_end(signum: int, _frame: object) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    signal.signal(signal.SIGTERM, remove_then_end)


def _remove_directories_of_dead_runs() -> None:
    for directory in Path(tempfile.gettempdir()).glob(f"{METRICS_DIR_PREFIX}*-*"):
        pid = directory.name.removeprefix(METRICS_DIR_PREFIX).split("-")[0]
        owned = directory.is_dir() and directory.stat().st_uid == os.getuid()
        if owned and pid.isdigit() and not running(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)


def serve_metrics(settings: Settings) -> None:
    """Scrapes are answered by this process, on a port of their own (metrics.serve)."""
    from . import metrics  # noqa: PLC0415 - after the directory is set

    metrics.serve_or_exit(
        settings.metrics.host,
        settings.metrics.port,
        program="{{ cookiecutter.package_name }}",
        setting="metrics.host/metrics.port (or APP_METRICS__PORT)",
    )


def main() -> None:
    try:
        settings = load_settings()
    except ConfigurationError as error:
        print(f"{{ cookiecutter.package_name }}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.logging, settings.application.name)
    prepare_metrics_directory()
    if settings.metrics.enabled:
        serve_metrics(settings)
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
