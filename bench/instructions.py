"""Instructions per request of each app, counted by valgrind's callgrind.

    python bench/instructions.py                  # make bench-instructions (about 8 minutes)
    python bench/instructions.py --gate           # make bench-gate: CI's gate, fails past +5%
    python bench/instructions.py --gate --update  # make bench-gate-update: new gate.json

A count of instructions is the same on a busy machine as on a quiet one, so a change
of a few percent in the app's own cost shows, where CPU time on a shared machine
cannot tell it from the noise. Renders, migrates and seeds as bench/run.py does, then
runs bench/in_process.py under callgrind once per server and endpoint, two at a time.
Only the measured requests are counted: callgrind zeroes its counters when the
process calls getppid() and writes them out when it calls getpgrp(), which
in_process.py does right before and after them, so start-up and warm-up (about 6
billion instructions, 30 times a request's) are not in the figure. Writes
instructions.json and instructions.md.

The count is per request only if nothing else in the process depends on time: under
valgrind a run takes 50 times longer, and a background task that wakes every few
seconds (the pool sampler, the connection budget check, the idempotency clean-up)
then runs a number of times that depends on how busy the machine is. Their intervals
are set to a day here (TIMERS_OFF): they are a cost per second, not per request.
(Counting the whole process, with a run of 10 and one of 30 requests, gave 1.29 and
0.44 million per readiness check for one commit.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

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

# The first line of a callgrind dump that sums every event: "summary: <instructions>".
SUMMARY = re.compile(r"^summary: (\d+)$", re.MULTILINE)
# What in_process.py calls around the measured requests (and nothing else calls).
MEASURED_FROM, MEASURED_TO = "getppid", "getpgrp"


@dataclass(frozen=True)
class Counts:
    endpoints: tuple[str, ...]
    requests: int
    warmup: int


@dataclass(frozen=True)
class Project:
    """The rendered project's interpreter, its seeded accounts and a scratch directory."""

    python: str
    first_account: int
    work: Path


FULL = Counts(endpoints=ENDPOINTS, requests=1000, warmup=300)
GATE = Counts(endpoints=("account", "transfer"), requests=200, warmup=300)
GATE_FILE = BENCH / "results" / "gate.json"
# Past this, a change costs more than the committed figures allow (goal: fail past +5%).
GATE_TOLERANCE = 0.05
# A day: no timer of the rendered app fires during a count (see the docstring).
TIMERS_OFF = {
    "APP_METRICS__POOL_SAMPLE_SECONDS": "86400",
    "APP_DATABASE__BUDGET__CHECK_INTERVAL_SECONDS": "86400",
    "APP_LEDGER__IDEMPOTENCY__CLEANUP_INTERVAL_SECONDS": "86400",
}


def instructions(project: Project, server: Server, endpoint: str, counts: Counts) -> float:
    """Millions of instructions per measured request of one bench/in_process.py run
    (every thread of the process)."""
    result = project.work / f"instructions-{uuid.uuid4().hex}.json"
    dump = project.work / f"callgrind-{uuid.uuid4().hex}.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={dump}",
        f"--zero-before={MEASURED_FROM}",
        f"--dump-before={MEASURED_TO}",
        *in_process_command(
            project.python,
            server.name,
            endpoint,
            requests=counts.requests,
            first_account=project.first_account,
            result=result,
            warmup=counts.warmup,
        ),
    ]
    env = {**server.env, **TIMERS_OFF}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False, timeout=1800
    )
    # The dump at MEASURED_TO is the first numbered one; the file without a number
    # holds what ran after it, until the process exited.
    dumps = sorted(dump.parent.glob(f"{dump.name}.*"))
    if done.returncode != 0 or [path.name for path in dumps] != [f"{dump.name}.1"]:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr[-3000:]}")
    found = SUMMARY.search(dumps[0].read_text())
    if found is None:
        raise RuntimeError(f"no summary line in {dumps[0]}")
    return int(found.group(1)) / counts.requests / 1e6


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
    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        work = Path(directory)
        try:
            rendered, first_account = prepare(work, url)
            python = str(rendered / "backend" / ".venv" / "bin" / "python")
            project = Project(python, first_account, work)
            # Only their settings (env): the apps run in process, no server is started.
            found = servers(rendered, url, 2, work)
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
