"""What `python -m` sets up around uvicorn: the directory the workers share their
metric files in, and the metrics listener."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.__main__ import (
    METRICS_DIR_PREFIX,
    MULTIPROCESS_DIR_ENV,
    prepare_metrics_directory,
    serve_metrics,
)
from {{ cookiecutter.package_name }}.configuration import load_settings


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Directories the test had prepare_metrics_directory create, removed after;
    the variable it sets is restored (setenv first: monkeypatch restores only what
    it has seen)."""
    monkeypatch.setenv(MULTIPROCESS_DIR_ENV, "")
    monkeypatch.delenv(MULTIPROCESS_DIR_ENV)
    on_sigterm = signal.getsignal(signal.SIGTERM)
    directories: list[Path] = []
    yield directories
    signal.signal(signal.SIGTERM, on_sigterm)
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


def test_the_default_directory_is_private_and_fresh(
    created: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a predictable name another local user could create first (and read or fill)."""
    created.append(prepare_metrics_directory())
    monkeypatch.delenv(MULTIPROCESS_DIR_ENV)
    created.append(prepare_metrics_directory())
    first, second = created
    assert first != second
    assert os.environ[MULTIPROCESS_DIR_ENV] == str(second)
    for directory in created:
        status = directory.stat()
        assert stat.S_IMODE(status.st_mode) == 0o700
        assert status.st_uid == os.getuid()
        assert list(directory.iterdir()) == []


def test_the_default_directory_is_removed_on_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn with one worker ends by raising SIGTERM again, which skips atexit."""
    monkeypatch.delenv(MULTIPROCESS_DIR_ENV, raising=False)
    script = (
        "import sys, time\n"
        "from {{ cookiecutter.package_name }}.__main__ import prepare_metrics_directory\n"
        "print(prepare_metrics_directory(), flush=True)\n"
        "time.sleep(30)\n"
    )
    with subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as service:
        assert service.stdout is not None
        directory = Path(service.stdout.readline().strip())
        assert directory.is_dir()
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=10) == -signal.SIGTERM
    assert not directory.exists()


def test_directories_of_runs_that_died_are_removed_at_start(created: list[Path]) -> None:
    """A run killed before its exit handlers leaves its directory; the next start
    removes it (and keeps those of runs still going: this process's)."""
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    dead = Path(tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{finished.stdout.strip()}-"))
    alive = Path(tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-"))
    created.extend([dead, alive])
    (dead / "gauge_livesum_1.db").write_bytes(b"stale")
    created.append(prepare_metrics_directory())
    assert not dead.exists()
    assert alive.exists()


def test_a_configured_directory_is_emptied_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"stale")
    (tmp_path / "counter_4242.db").write_bytes(b"stale")
    monkeypatch.setenv(MULTIPROCESS_DIR_ENV, str(tmp_path))
    assert prepare_metrics_directory() == tmp_path
    assert list(tmp_path.iterdir()) == []


def test_a_taken_metrics_port_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("APP_METRICS__PORT", str(taken.getsockname()[1]))
        with pytest.raises(SystemExit) as exited:
            serve_metrics(load_settings())
    assert exited.value.code == 2
    assert "APP_METRICS__PORT" in capsys.readouterr().err
