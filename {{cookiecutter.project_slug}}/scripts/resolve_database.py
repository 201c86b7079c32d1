#!/usr/bin/env python3
"""Print the URL of a PostgreSQL database to use locally, finding a server if needed.

In order: $DATABASE_URL as given; the compose database of this project when
`make db` (or `docker compose up`) runs it, as its owner with the password in
.env; a server on 127.0.0.1:5432; a throwaway cluster started from the local
PostgreSQL server binaries. Prints nothing and
exits 3 when none of these works. The post-generation hook, `make init-db`,
`make run`, `make smoke` and the test suite all use this one resolution.

Standard library only, so it runs before the project's environment exists.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5432
THROWAWAY_PORT = 55432
NOT_FOUND = 3
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The owner's name in docker-compose.yml (POSTGRES_USER).
COMPOSE_OWNER = "app"


def log(message: str) -> None:
    print(f"resolve_database: {message}", file=sys.stderr)


def accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def server_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    bindir = Path(
        subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    return bindir if (bindir / "initdb").exists() else None


def as_server_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: run them as the postgres user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def start_throwaway(bindir: Path, port: int) -> bool:
    data_root = Path(tempfile.gettempdir()) / f"throwaway-pg-{port}"
    data = data_root / "data"
    if not (data / "PG_VERSION").exists():
        data_root.mkdir(mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data_root, "postgres", "postgres")
        subprocess.run(
            as_server_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )
    options = f"-p {port} -k {data_root} -c listen_addresses={DEFAULT_HOST}"
    result = subprocess.run(
        as_server_user(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(data_root / "log"),
                "-w",
                "-o",
                options,
                "start",
            ]
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        log(f"could not start a throwaway cluster: {result.stderr.strip()}")
        return False
    log(
        f"started a throwaway cluster in {data} on port {port}; stop it with: pg_ctl -D {data} stop"
    )
    return True


def compose_database(database: str) -> str | None:
    """The URL of the compose `db` service's loopback port, if it is running."""
    env_file = PROJECT_ROOT / ".env"
    docker = shutil.which("docker")
    if docker is None or not env_file.exists():
        return None
    try:
        published = subprocess.run(
            [docker, "compose", "port", "db", "5432"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=15,
        )
    except subprocess.TimeoutExpired:
        return None
    _, _, port = published.stdout.strip().rpartition(":")
    if published.returncode != 0 or not port.isdigit():
        return None
    settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    password = settings.get("POSTGRES_PASSWORD", "")
    return f"postgresql://{COMPOSE_OWNER}:{password}@{DEFAULT_HOST}:{port}/{database}"


def resolve(database: str, port: int = DEFAULT_PORT) -> str | None:
    if url := os.environ.get("DATABASE_URL"):
        return url
    if url := compose_database(database):
        return url
    if accepts_connections(DEFAULT_HOST, port):
        return f"postgresql://postgres@{DEFAULT_HOST}:{port}/{database}"
    if accepts_connections(DEFAULT_HOST, THROWAWAY_PORT):
        return f"postgresql://postgres@{DEFAULT_HOST}:{THROWAWAY_PORT}/{database}"
    bindir = server_bindir()
    if bindir is not None and start_throwaway(bindir, THROWAWAY_PORT):
        return f"postgresql://postgres@{DEFAULT_HOST}:{THROWAWAY_PORT}/{database}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="{{ cookiecutter.package_name }}")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="where to look for a running server first"
    )
    arguments = parser.parse_args()
    url = resolve(arguments.database, arguments.port)
    if url is None:
        log(
            "no PostgreSQL found: set DATABASE_URL, or start PostgreSQL on "
            f"{DEFAULT_HOST}:{DEFAULT_PORT}, then run `make init-db`"
        )
        return NOT_FOUND
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
