"""The rendered scripts/resolve_database.py, in its resolution order: DATABASE_URL,
the server on 127.0.0.1:5432, then a throwaway cluster from the local binaries."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from .support.commands import run
from .support.databases import fetch
from .support.ports import free_port
from .support.postgres_cluster import as_server_user

THROWAWAY_PORT = 55432


def resolve(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | env
    return run(
        [sys.executable, "scripts/resolve_database.py", *args], project, environment, timeout=120
    )


@pytest.fixture
def project(bake: Any) -> Path:
    project: Path = bake({})
    return project


def test_database_url_wins(project: Path) -> None:
    result = resolve(project, DATABASE_URL="postgresql://app@db.internal:6543/app")
    assert (result.returncode, result.stdout) == (0, "postgresql://app@db.internal:6543/app\n")


def test_local_server_is_found(project: Path) -> None:
    result = resolve(project, "--database", "shop")
    assert (result.returncode, result.stdout) == (0, "postgresql://postgres@127.0.0.1:5432/shop\n")


@pytest.mark.skipif(shutil.which("pg_config") is None, reason="no PostgreSQL binaries here")
@pytest.mark.xdist_group("throwaway-cluster")
def test_throwaway_cluster_when_no_server_answers(project: Path) -> None:
    data_root = Path(tempfile.gettempdir()) / f"throwaway-pg-{THROWAWAY_PORT}"
    already_running = (data_root / "data" / "postmaster.pid").exists()
    result = resolve(project, "--port", str(free_port()), "--database", "postgres")
    try:
        assert result.returncode == 0, result.stderr
        url = result.stdout.strip()
        assert url == f"postgresql://postgres@127.0.0.1:{THROWAWAY_PORT}/postgres"
        assert asyncio.run(fetch(url, "SHOW server_version"))
    finally:
        if not already_running and (data_root / "data").exists():
            bindir = run(["pg_config", "--bindir"]).stdout.strip()
            stop = [f"{bindir}/pg_ctl", "-D", str(data_root / "data"), "-m", "fast", "-w", "stop"]
            run(as_server_user(stop))
            shutil.rmtree(data_root, ignore_errors=True)
