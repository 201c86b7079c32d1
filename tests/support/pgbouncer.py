"""Debian's pgbouncer in front of a database, with its admin console."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from .commands import run
from .polling import wait_until
from .ports import free_port
from .postgres_cluster import as_server_user

STARTUP_SECONDS = 30.0


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
        wait_until(
            self._accepts,
            STARTUP_SECONDS,
            "pgbouncer starting",
            process=self.process,
            output=self.log,
        )
        return self

    def _accepts(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1):
            return True
        return False

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def admin(self, command: str) -> None:
        """A command of the admin console, e.g. `PAUSE app`; returns once it is done."""
        result = run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d",
             "pgbouncer", "-X", "-q", "-c", command],
            timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
