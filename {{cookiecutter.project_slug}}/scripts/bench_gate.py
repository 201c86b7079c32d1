"""`make bench-gate`: instructions per request of the service's own endpoints, counted
by callgrind, against the committed figures (bench-gate.json); fails past +5%.

    make bench-gate          # compare (the first run, with no figures yet, records them)
    make bench-gate-update   # recount and rewrite bench-gate.json after an intended change

A count of instructions varies far less with the machine's load than a timing (a few
percent at most), so a change of 5% in what a request costs shows, where timing it
cannot. Each endpoint
is run by scripts/in_process.py under valgrind, two at a time, against a database of
its own (created and migrated by scripts/init_db.sh{{ ", seeded" if cookiecutter.example_domain == "ledger" }}, dropped again), with the
settings that ship: base.yaml's wherever configuration/test.yaml differs.
{%- if cookiecutter.auth != "none" %} The test
environment serves for its development credential only: every request carries
{{ "an API key (backend/scripts/api_key.py)" if cookiecutter.auth == "api_key" else "a token (make token)" }}, so what authentication costs is in the figure.
{%- endif %}

Counts depend on the interpreter and the libraries' versions: compare figures counted
on the same kind of machine (CI's, say: its job uploads the figures it counted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BACKEND = PROJECT_ROOT / "backend"
FIGURES = PROJECT_ROOT / "bench-gate.json"
# This run's figures, whatever the verdict (CI keeps them): the file to commit after
# an intended change, when they are counted on the machine that gates.
COUNTED = PROJECT_ROOT / "build" / "bench-gate.json"
IN_PROCESS = PROJECT_ROOT / "scripts" / "in_process.py"
# Past this, a change costs more than the committed figures allow.
TOLERANCE = 0.05
# The endpoints gated (scripts/in_process.py knows their requests).
ENDPOINTS = {{ '("account", "transfer")' if cookiecutter.example_domain == "ledger" else ('("ready", "me")' if cookiecutter.auth != "none" else '("ready",)') }}
REQUESTS = 200
WARMUP = 300
{%- if cookiecutter.example_domain == "ledger" %}
ACCOUNTS = 1000
{%- endif %}
{%- if cookiecutter.auth != "none" %}
SUBJECT = "bench"
SCOPES = "{{ "ledger:read ledger:write" if cookiecutter.example_domain == "ledger" }}"
{%- endif %}
# Settings of test.yaml that stay: the database is the gate's own{% if cookiecutter.auth != "none" %}, and the test
# environment's development credential is what the requests carry{% endif %}.
KEPT = ("database.url", "auth.")


def server_url() -> str:
    """The PostgreSQL server: $DATABASE_URL, else scripts/resolve_database.py's."""
    if url := os.environ.get("DATABASE_URL"):
        return url
    resolved = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "resolve_database.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    if resolved.returncode != 0:
        sys.exit(f"bench-gate: no PostgreSQL found:\n{resolved.stderr}")
    return resolved.stdout.strip()


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a.b": value} for every scalar of a YAML document."""
    found: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            found |= leaves(value, f"{prefix}{key}.")
        elif not isinstance(value, list):
            found[f"{prefix}{key}"] = value
    return found


def shipped_settings() -> dict[str, str]:
    """APP_* variables that undo what configuration/test.yaml changes (its quieter
    logging and smaller pool, say), back to base.yaml's values."""
    directory = BACKEND / "configuration"
    base = leaves(yaml.safe_load((directory / "base.yaml").read_text()) or {})
    test = leaves(yaml.safe_load((directory / "test.yaml").read_text()) or {})
    return {
        "APP_" + key.upper().replace(".", "__"): (
            value if isinstance(value, str) else json.dumps(value)
        )
        for key, value in base.items()
        if key in test and not key.startswith(KEPT)
    }


def migrate(url: str) -> None:
    done = subprocess.run(
        ["bash", str(PROJECT_ROOT / "scripts" / "init_db.sh")],
        env={**os.environ, "APP_DATABASE__URL": url},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"bench-gate: init_db.sh failed:\n{done.stdout}{done.stderr}")
{%- if cookiecutter.example_domain == "ledger" %}


async def seed(url: str) -> int:
    """ACCOUNTS accounts{{ " held by SUBJECT" if cookiecutter.auth != "none" }}; the first one's id."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "INSERT INTO accounts (owner, currency, balance_minor{{ ", holder" if cookiecutter.auth != "none" }}) "
            "SELECT 'bench ' || n, 'EUR', 1000000000000{{ ", $2" if cookiecutter.auth != "none" }} "
            "FROM generate_series(1, $1) AS n",
            ACCOUNTS,
{%- if cookiecutter.auth != "none" %}
            SUBJECT,
{%- endif %}
        )
        await connection.execute("ANALYZE")
        return int(await connection.fetchval("SELECT min(id) FROM accounts"))
    finally:
        await connection.close()
{%- endif %}


async def drop(server: str, name: str) -> None:
    connection = await asyncpg.connect(with_database(server, "postgres"))
    try:
        # The name is this script's own (letters, digits and "_"): safe to splice in.
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
{%- if cookiecutter.auth != "none" %}


def credential(env: dict[str, str]) -> str:
    """The Authorization header's value every request carries."""
{%- if cookiecutter.auth == "api_key" %}
    command = [sys.executable, "scripts/api_key.py", "create", SUBJECT, SCOPES]
{%- else %}
    command = [sys.executable, "scripts/mint_token.py", SUBJECT, SCOPES, "--minutes", "120"]
{%- endif %}
    done = subprocess.run(
        command, cwd=BACKEND, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"bench-gate: {' '.join(command)} failed:\n{done.stderr}")
    return f"Bearer {done.stdout.strip()}"
{%- endif %}


def count(endpoint: str, env: dict[str, str], work: Path, extra: list[str]) -> float:
    """Millions of instructions per request of `endpoint`."""
    result = work / f"{endpoint}.json"
    command = [
        sys.executable,
        str(IN_PROCESS),
        "--endpoint",
        endpoint,
        "--requests",
        str(REQUESTS),
        "--warmup",
        str(WARMUP),
        "--result",
        str(result),
        "--instructions",
        *extra,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"bench-gate: {endpoint}: {done.stderr[-3000:]}")
    figure: float = json.loads(result.read_text())["m_instructions_per_request"]
    print(f"  {endpoint:10} {figure:.3f} M instructions/request", flush=True)
    return figure


def measure(endpoints: list[str]) -> dict[str, float]:
    server = server_url()
    name = f"{{ cookiecutter.package_name }}_bench_{uuid.uuid4().hex[:12]}"
    url = with_database(server, name)
    env = {
        **os.environ,
        **shipped_settings(),
        "APP_ENVIRONMENT": "test",
        "APP_DATABASE__URL": url,
    }
    try:
        migrate(url)
        with tempfile.TemporaryDirectory(prefix="bench-gate-") as directory:
            work = Path(directory)
            extra: list[str] = []
{%- if cookiecutter.example_domain == "ledger" %}
            first = asyncio.run(seed(url))
            extra += ["--first-account", str(first), "--accounts", str(ACCOUNTS)]
{%- endif %}
{%- if cookiecutter.auth != "none" %}
            authorization = work / "authorization"
            authorization.write_text(credential(env) + "\n")
            extra += ["--authorization", str(authorization)]
{%- endif %}
            with ThreadPoolExecutor(max_workers=2) as pool:  # two cores' worth
                figures = pool.map(lambda endpoint: count(endpoint, env, work, extra), endpoints)
                return dict(zip(endpoints, figures, strict=True))
    finally:
        asyncio.run(drop(server, name))


def compare(figures: dict[str, float], committed: dict[str, Any]) -> int:
    """1 if any endpoint's count grew past TOLERANCE over the committed figure."""
    failed = 0
    for endpoint, figure in figures.items():
        before = committed["m_instructions_per_request"][endpoint]
        change = figure / before - 1
        verdict = "ok"
        if change > TOLERANCE:
            verdict, failed = f"FAIL (over +{TOLERANCE:.0%})", 1
        print(f"  {endpoint:10} {before:.3f} -> {figure:.3f} M ({change:+.1%}) {verdict}")
    if failed:
        print(
            f"Instructions per request grew past {FIGURES.name} (counted with Python "
            f"{committed.get('python')}; this run: {platform.python_version()}). If the "
            "cost is intended, make bench-gate-update and commit the file."
        )
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help=f"rewrite {FIGURES.name}")
    parser.add_argument(
        "--endpoint",
        action="append",
        choices=ENDPOINTS,
        help="only this endpoint (repeatable; default: all)",
    )
    arguments = parser.parse_args()
    endpoints = arguments.endpoint or list(ENDPOINTS)
    committed = json.loads(FIGURES.read_text()) if FIGURES.exists() else None
    if committed is not None and not arguments.update:
        # Said before counting, and a failure: an endpoint left out of the figures
        # would otherwise pass every run ungated.
        missing = [e for e in endpoints if e not in committed["m_instructions_per_request"]]
        if missing:
            sys.exit(
                f"bench-gate: {FIGURES.name} has no figure for {', '.join(missing)}; "
                "count it with make bench-gate-update and commit the file"
            )
    figures = measure(endpoints)
    # An update of some endpoints keeps the others' figures.
    kept = committed["m_instructions_per_request"] if committed else {}
    counted = json.dumps(
        {
            "python": platform.python_version(),
            "requests": REQUESTS,
            "warmup": WARMUP,
            "m_instructions_per_request": kept | figures,
        },
        indent=2,
        sort_keys=True,
    )
    COUNTED.parent.mkdir(exist_ok=True)
    COUNTED.write_text(counted + "\n")
    if committed is not None and not arguments.update:
        sys.exit(compare(figures, committed))
    FIGURES.write_text(counted + "\n")
    print(f"recorded {FIGURES.name}: commit it, and later runs compare with it")


if __name__ == "__main__":
    main()
