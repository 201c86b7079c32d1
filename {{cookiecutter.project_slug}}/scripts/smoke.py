"""Start the service, check it answers as deployed code must, and stop it.

Checks: /health/live, /health/ready, and real database-backed requests.
Uses $APP_DATABASE__URL (set by `make smoke`). Exit 1 with the service's log on failure.
{%- if cookiecutter.auth != "none" %}
{%- if cookiecutter.auth == "api_key" %}
Requests carry $SMOKE_TOKEN if set (an API key, from `make api-key`), else a key
created for this run in the database and deleted again at exit.
{%- else %}
Requests carry $SMOKE_TOKEN if set (a token from your identity provider, when the
service runs with its production configuration), else a token signed by the
development key, which the local and test configurations trust.
{%- endif %}
{%- endif %}
{%- if cookiecutter.example_domain == "ledger" %}
The account it opens is deleted again, passed or failed: the database keeps no trace.
{%- endif %}
"""

from __future__ import annotations
{% if cookiecutter.example_domain == "ledger" or cookiecutter.auth == "api_key" %}
import asyncio
{%- endif %}
{%- if cookiecutter.auth == "api_key" %}
import atexit
{%- endif %}
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
{%- if cookiecutter.example_domain == "ledger" or cookiecutter.auth == "api_key" %}

import asyncpg
{%- endif %}

STARTUP_TIMEOUT_SECONDS = 20.0
PACKAGE = "{{ cookiecutter.package_name }}"
{%- if cookiecutter.auth != "none" %}
SMOKE_SUBJECT = "smoke-test"
SMOKE_SCOPES = "{{ "ledger:read ledger:write" if cookiecutter.example_domain == "ledger" }}"
{%- endif %}


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


{%- if cookiecutter.auth != "none" %}


def credentials() -> dict[str, str]:
    token = os.environ.get("SMOKE_TOKEN")
    if not token:
{%- if cookiecutter.auth == "api_key" %}
        url = os.environ["APP_DATABASE__URL"]
        key_id, token = asyncio.run(create_key(url))
        atexit.register(lambda: asyncio.run(delete_key(url, key_id)))
{%- else %}
        from {{ cookiecutter.package_name }}.auth.development import mint  # noqa: PLC0415
        from {{ cookiecutter.package_name }}.configuration import load_settings  # noqa: PLC0415

        audience = load_settings().auth.audience
        token = mint(SMOKE_SUBJECT, SMOKE_SCOPES, audience, lifetime_seconds=300)
{%- endif %}
    return {"Authorization": f"Bearer {token}"}
{%- if cookiecutter.auth == "api_key" %}


async def create_key(url: str) -> tuple[str, str]:
    """A key for this run only, made as `make api-key` makes one."""
    from {{ cookiecutter.package_name }}.auth.api_keys import new_key, secret_hash  # noqa: PLC0415
    from {{ cookiecutter.package_name }}.configuration import load_settings  # noqa: PLC0415
    from {{ cookiecutter.package_name }}.db import api_keys  # noqa: PLC0415
    from {{ cookiecutter.package_name }}.principal import Principal  # noqa: PLC0415

    key_id, secret, key = new_key()
    pepper = load_settings().auth.api_key_pepper.get_secret_value().encode()
    principal = Principal(SMOKE_SUBJECT, frozenset(SMOKE_SCOPES.split()))
    connection = await asyncpg.connect(url)
    try:
        hashed = secret_hash(pepper, key_id, secret)
        await api_keys.create(connection, key_id, f"{SMOKE_SUBJECT}-{key_id}", principal, hashed)
    finally:
        await connection.close()
    return key_id, key


async def delete_key(url: str, key_id: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("DELETE FROM api_keys WHERE id = $1", key_id)
    finally:
        await connection.close()
{%- endif %}
{%- endif %}


def check(base: str{{ ", created: list[int]" if cookiecutter.example_domain == "ledger" }}) -> None:
    status, body = request(base, "GET", "/health/live")
    expect("GET /health/live", status, 200, body)
    status, body = request(base, "GET", "/health/ready")
    expect("GET /health/ready", status, 200, body)
    status, body = request(base, "GET", "/version")
    expect("GET /version", status, 200, body)
    if not body["schema_revision"]:
        raise SmokeTestError(f"GET /version: the database is not migrated: {body}")
    print(f"  ✓ schema at revision {body['schema_revision']}")
{%- if cookiecutter.auth != "none" %}
    status, body = request(base, "GET", "/v1/me")
    expect("GET /v1/me without a token", status, 401, body)
    auth = credentials()
    status, body = request(base, "GET", "/v1/me", headers=auth)
    expect("GET /v1/me with a token", status, 200, body)
{%- endif %}
{%- if cookiecutter.example_domain == "ledger" %}
    status, account = request(
        base, "POST", "/v1/accounts", {"owner": "smoke test", "currency": "EUR"}{{ ", auth" if cookiecutter.auth != "none" }}
    )
    expect("POST /v1/accounts", status, 201, account)
    created.append(account["id"])
    status, body = request(base, "GET", f"/v1/accounts/{account['id']}"{{ ", headers=auth" if cookiecutter.auth != "none" }})
    expect(f"GET /v1/accounts/{account['id']}", status, 200, body)
    if body != account:
        raise SmokeTestError(f"the account read back differs: {body} != {account}")
{%- endif %}


{%- if cookiecutter.example_domain == "ledger" %}


async def delete_accounts(url: str, ids: list[int]) -> None:
    """The API closes no account (a ledger keeps its history), so this goes to the
    database directly, in one transaction: the accounts' entries, then the accounts
{%- if cookiecutter.background_worker == "yes" %}
    (and the events of their opening: pending, no job was made of them yet; a relay
    that moved one already finds its delivery gone, with the event)
{%- endif %}."""
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
{%- if cookiecutter.background_worker == "yes" %}
            await connection.execute(
                "DELETE FROM outbox_events WHERE type = 'account.opened'"
                " AND (payload->>'account_id')::bigint = ANY($1)",
                ids,
            )
{%- endif %}
            await connection.execute("DELETE FROM ledger_entries WHERE account_id = ANY($1)", ids)
            await connection.execute("DELETE FROM accounts WHERE id = ANY($1)", ids)
    finally:
        await connection.close()
{%- endif %}


def main() -> int:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {"APP_SERVER__PORT": str(port), "APP_SERVER__WORKERS": "1"}
    env["APP_METRICS__PORT"] = str(free_port())  # the metrics listener's, not a fixed one
{%- if cookiecutter.example_domain == "ledger" %}
    created: list[int] = []
{%- endif %}
    with tempfile.TemporaryFile() as service_log:
        service = subprocess.Popen(
            [sys.executable, "-m", PACKAGE], env=env, stdout=service_log, stderr=service_log
        )
        try:
            wait_until_live(base, service)
            check(base{{ ", created" if cookiecutter.example_domain == "ledger" }})
        except (SmokeTestError, OSError) as failure:
            print(f"smoke test failed: {failure}", file=sys.stderr)
            service.terminate()
            service.wait(timeout=10)
            service_log.seek(0)
            sys.stderr.write(service_log.read().decode(errors="replace"))
            return 1
{%- if cookiecutter.example_domain == "ledger" %}
        finally:
            if created:
                asyncio.run(delete_accounts(os.environ["APP_DATABASE__URL"], created))
{%- endif %}
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
