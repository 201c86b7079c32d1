"""A PostgreSQL cluster of a test's own, which the fault tests stop, crash and
restart without hurting anyone else on the machine."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .commands import run
from .ports import free_port

# A password the service is given and must never print (tests/test_reliability.py).
PASSWORD = "Reliability-Secret-7Qx"


def server_bindir() -> Path | None:
    """PostgreSQL's server binaries (initdb, pg_ctl), if installed."""
    if shutil.which("pg_config") is None:
        return None
    bindir = run(["pg_config", "--bindir"]).stdout.strip()
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
        result = run(as_server_user([str(self.bindir / command[0]), *command[1:]]), timeout=60)
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
