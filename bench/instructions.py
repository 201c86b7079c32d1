"""Instructions per request of each app, counted by valgrind's callgrind.

    python bench/instructions.py                  # make bench-instructions (about 2 minutes)
    python bench/instructions.py --gate           # make bench-gate: CI's gate, fails past +5%
    python bench/instructions.py --gate --update  # make bench-gate-update: new gate.json

A count of instructions is the same on a busy machine as on a quiet one, so a change
of a few percent in the app's own cost shows, where CPU time on a shared machine
cannot tell it from the noise. Renders (the default answers, so auth=oidc), migrates
and seeds as bench/run.py does, serves its identity provider and sends its one RS256
token with every read and transfer, to every app, then runs the rendered project's
scripts/in_process.py --instructions (what the project's
own `make bench-gate` runs) once per server and endpoint, two at a time. Only the
measured requests are counted: callgrind zeroes its counters right before them and
writes them out right after, so start-up and warm-up (about 6 billion instructions,
30 times a request's) are not in the figure, and they run uninstrumented (fast); the
app's timers (the pool sampler, the connection budget check, the idempotency
clean-up) are set to a day, since under
valgrind a run takes 50 times longer and they would run a number of times that
depends on how busy the machine is. (Counting the whole process, with a run of 10
and one of 30 requests, gave 1.29 and 0.44 million per readiness check for one
commit.) Writes instructions.json and instructions.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from identity_provider import RUN_TOKEN_SECONDS, IdentityProvider, authorization_file
from servers import (
    BENCH,
    ENDPOINTS,
    SERVERS,
    Server,
    database_urls,
    drop_database,
    in_process_command,
    prepare,
    servers,
)


@dataclass(frozen=True)
class Counts:
    endpoints: tuple[str, ...]
    requests: int
    warmup: int


@dataclass(frozen=True)
class Project:
    """The rendered project, its seeded accounts, a scratch directory and the
    Authorization header file its requests send (None: no credentials)."""

    path: Path
    first_account: int
    work: Path
    authorization: Path | None = None


FULL = Counts(endpoints=ENDPOINTS, requests=1000, warmup=300)
GATE = Counts(endpoints=("account", "transfer"), requests=200, warmup=300)
GATE_FILE = BENCH / "results" / "gate.json"
# Past this, a change costs more than the committed figures allow (goal: fail past +5%).
GATE_TOLERANCE = 0.05


def instructions(project: Project, server: Server, endpoint: str, counts: Counts) -> float:
    """Millions of instructions per measured request of one in-process run."""
    result = project.work / f"instructions-{uuid.uuid4().hex}.json"
    command = in_process_command(
        project.path,
        server.name,
        endpoint,
        requests=counts.requests,
        first_account=project.first_account,
        result=result,
        warmup=counts.warmup,
        instructions=True,
        authorization=project.authorization,
    )
    done = subprocess.run(
        command, env=server.env, capture_output=True, text=True, check=False, timeout=1800
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr[-3000:]}")
    return float(json.loads(result.read_text())["m_instructions_per_request"])


def markdown(figures: dict[str, dict[str, float]]) -> str:
    lines = [
        "Millions of instructions per request, in process (bench/instructions.py)",
        "",
        "| endpoint | rendered | bare FastAPI | baseline | rendered / bare FastAPI "
        "| rendered / baseline |",
        "|---|---|---|---|---|---|",
    ]
    for endpoint, by_server in figures.items():
        rendered, bare, baseline = (by_server[name] for name in SERVERS)
        lines.append(
            f"| {endpoint} | {rendered:.3f} | {bare:.3f} | {baseline:.3f} | "
            f"{rendered / bare:.2f} | {rendered / baseline:.2f} |"
        )
    return "\n".join(lines) + "\n"


def gate(figures: dict[str, dict[str, float]], update: bool) -> int:
    """Compares with GATE_FILE (or rewrites it): 1 if any count grew past the tolerance."""
    if update:
        GATE_FILE.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
        print(f"updated {GATE_FILE}")
        return 0
    if not GATE_FILE.exists():
        print(f"No committed figures in {GATE_FILE}: make bench-gate-update writes them.")
        return 1
    committed = json.loads(GATE_FILE.read_text())
    failed = 0
    for endpoint, by_server in figures.items():
        for name, figure in by_server.items():
            before = committed.get(endpoint, {}).get(name)
            if before is None:  # a server or endpoint new to the gate
                print(f"  {name:12} {endpoint:8} {figure:.3f} M: no committed figure, not gated")
                continue
            change = figure / before - 1
            verdict = "ok"
            if change > GATE_TOLERANCE:
                verdict, failed = f"FAIL (over +{GATE_TOLERANCE:.0%})", 1
            print(
                f"  {name:12} {endpoint:8} {before:.3f} -> {figure:.3f} M ({change:+.1%}) ", end=""
            )
            print(verdict)
    if failed:
        print(
            "Instructions per request grew past the committed figures. If the cost is "
            "intended, update them: python bench/instructions.py --gate --update"
        )
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gate", action="store_true", help="the reads and transfers, compared with gate.json"
    )
    parser.add_argument("--update", action="store_true", help="with --gate: rewrite gate.json")
    parser.add_argument(
        "--output", type=Path, default=BENCH / "results", help="where the two files go"
    )
    arguments = parser.parse_args()
    counts = GATE if arguments.gate else FULL
    arguments.output.mkdir(parents=True, exist_ok=True)
    maintenance_url, url = database_urls()
    provider = IdentityProvider()
    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        work = Path(directory)
        try:
            rendered, first_account = prepare(work, url)
            token = provider.token(lifetime_seconds=RUN_TOKEN_SECONDS)
            authorization = authorization_file(work / "authorization.txt", [token])
            project = Project(rendered, first_account, work, authorization)
            # Only their settings (env): the apps run in process, no server is started.
            found = servers(rendered, url, 2, work, provider)
            runs = [(endpoint, name) for endpoint in counts.endpoints for name in SERVERS]
            with ThreadPoolExecutor(max_workers=2) as pool:  # one per core
                counted = pool.map(
                    lambda run: instructions(project, found[run[1]], run[0], counts), runs
                )
                figures: dict[str, dict[str, float]] = {}
                for (endpoint, name), figure in zip(runs, counted, strict=True):
                    figures.setdefault(endpoint, {})[name] = figure
                    print(
                        f"  {name:12} {endpoint:8} {figure:.3f} M instructions/request", flush=True
                    )
        finally:
            provider.close()
            asyncio.run(drop_database(maintenance_url, url))
    results = {
        "requests": counts.requests,
        "warmup": counts.warmup,
        "m_instructions_per_request": figures,
    }
    print(markdown(figures))
    if arguments.gate:
        raise SystemExit(gate(figures, arguments.update))
    (arguments.output / "instructions.json").write_text(json.dumps(results, indent=2) + "\n")
    (arguments.output / "instructions.md").write_text(markdown(figures))


if __name__ == "__main__":
    main()
