"""Start the service, check it answers as deployed code must, and stop it.

Checks: /health/live, /health/ready, and real database-backed requests.
Uses $APP_DATABASE__URL (set by `make smoke`). Exit 1 with the service's log on failure.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

STARTUP_TIMEOUT_SECONDS = 20.0
PACKAGE = "{{ cookiecutter.package_name }}"


class SmokeTestError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def request(
    base: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(  # noqa: S310 (the URL is our own 127.0.0.1 service)
        base + path,
        data=data,
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as response:  # noqa: S310  # nosec B310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def expect(label: str, actual: int, expected: int, body: Any) -> None:
    if actual != expected:
        raise SmokeTestError(f"{label}: expected {expected}, got {actual}: {body}")
    print(f"  ✓ {label}")


def wait_until_live(base: str, service: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise SmokeTestError(f"the service exited with {service.returncode} while starting")
        try:
            if request(base, "GET", "/health/live")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SmokeTestError(f"not live within {STARTUP_TIMEOUT_SECONDS}s")


def check(base: str) -> None:
    status, body = request(base, "GET", "/health/live")
    expect("GET /health/live", status, 200, body)
    status, body = request(base, "GET", "/health/ready")
    expect("GET /health/ready", status, 200, body)
    status, body = request(base, "GET", "/version")
    expect("GET /version", status, 200, body)
    if not body["schema_revision"]:
        raise SmokeTestError(f"GET /version: the database is not migrated: {body}")
    print(f"  ✓ schema at revision {body['schema_revision']}")
{%- if cookiecutter.example_domain == "ledger" %}
    status, account = request(
        base, "POST", "/v1/accounts", {"owner": "smoke test", "currency": "EUR"}
    )
    expect("POST /v1/accounts", status, 201, account)
    status, body = request(base, "GET", f"/v1/accounts/{account['id']}")
    expect(f"GET /v1/accounts/{account['id']}", status, 200, body)
    if body != account:
        raise SmokeTestError(f"the account read back differs: {body} != {account}")
{%- endif %}


def main() -> int:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {"APP_SERVER__PORT": str(port), "APP_SERVER__WORKERS": "1"}
    env["APP_METRICS__PORT"] = str(free_port())  # the metrics listener's, not a fixed one
    with tempfile.TemporaryFile() as service_log:
        service = subprocess.Popen(
            [sys.executable, "-m", PACKAGE], env=env, stdout=service_log, stderr=service_log
        )
        try:
            wait_until_live(base, service)
            check(base)
        except (SmokeTestError, OSError) as failure:
            print(f"smoke test failed: {failure}", file=sys.stderr)
            service.terminate()
            service.wait(timeout=10)
            service_log.seek(0)
            sys.stderr.write(service_log.read().decode(errors="replace"))
            return 1
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
