"""Benchmark the rendered service against bare FastAPI and a raw asyncpg baseline, in one run.

    python bench/run.py            # the full run (3 rounds, well under 15 minutes on 2 cores)
    python bench/run.py --quick    # a smoke of the whole pipeline for CI (about a minute)

Renders the default project with the default answers (run_checks=no; so
auth=oidc), installs it, migrates a database of its own on the PostgreSQL that
DATABASE_URL names (default 127.0.0.1:5432), seeds accounts held by the token's
subject, serves an identity provider (bench/identity_provider.py) and mints one
RS256 token for the run, then starts four servers on 127.0.0.1 with the same
number of workers: the rendered service in production configuration trusting that
provider, the same with request logging off, bench/bare_fastapi.py (the
framework's floor) and bench/baseline.py. Every ledger request carries the token,
to every server; the hand-written two ignore it. Each
round runs, per endpoint and server in turn (A B A B ...), a bracketed search for
the highest sustainable constant arrival rate and one run at a fixed rate every
server holds; then a crowd of keep-alive clients at a modest rate (crowd.py).
Writes bench/results/ results.json, results.md and rate_vs_p99.png. Processes are
killed and the database dropped on every exit path.

This file only runs the steps; servers.py starts the servers and accounts for
their CPU, search.py measures (k6, the search, in process), report.py writes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crowd import FULL_CROWD, QUICK_CROWD, crowds
from identity_provider import RUN_TOKEN_SECONDS, IdentityProvider
from report import chart, markdown, summarize
from search import FULL, MAX_ERROR_RATE, MAX_P99_MS, QUICK, Bench, in_process, k6_version, measure
from servers import (
    BENCH,
    ENDPOINTS,
    Server,
    database_urls,
    drop_database,
    pool_sizes,
    prepare,
    servers,
)


def stop_on_sigterm(_signal: int, _frame: object) -> None:
    """SIGTERM (a CI timeout, say) unwinds through the cleanup like Ctrl-C does."""
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round: a smoke for CI")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per server")
    parser.add_argument(
        "--output",
        type=Path,
        default=BENCH / "results",
        help="where results.json, results.md and rate_vs_p99.png go",
    )
    arguments = parser.parse_args()
    mode = QUICK if arguments.quick else FULL
    arguments.output.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    started = time.monotonic()
    maintenance_url, url = database_urls()
    running: list[Server] = []
    provider = IdentityProvider()
    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        work = Path(directory)
        try:
            project, first_account = prepare(work, url)
            found = servers(project, url, arguments.workers, work, provider)
            for server in found.values():
                running.append(server)
                server.start()
                print(f"{server.name} ready in {server.start_to_ready_s:.2f} s", flush=True)
            token = provider.token(lifetime_seconds=RUN_TOKEN_SECONDS)
            bench = Bench(mode, found, first_account, work, url, token)
            for server in found.values() if mode.warmup_seconds else ():
                for endpoint in ENDPOINTS:
                    bench.k6(
                        server,
                        endpoint,
                        mode.first_rates[endpoint],
                        seconds=mode.warmup_seconds,
                        kind="warmup",
                        round_number=0,
                    )
            bench.runs.clear()
            best, fixed_rates = measure(bench)
            crowd = crowds(bench, QUICK_CROWD if arguments.quick else FULL_CROWD)
            app_alone = in_process(bench, project)
            results: dict[str, Any] = {
                "meta": {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "mode": "quick" if arguments.quick else "full",
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "k6": k6_version(),
                    "workers": arguments.workers,
                    "authentication": "the default answers' (auth=oidc): every ledger request "
                    "carries one RS256 bearer token, minted for the run",
                    "pool": "{}–{}".format(*pool_sizes(project)),
                    "rounds": mode.rounds,
                    "step_seconds": mode.step_seconds,
                    "fixed_seconds": mode.fixed_seconds,
                    "criteria": {
                        "max_error_rate": MAX_ERROR_RATE,
                        "max_p99_ms": MAX_P99_MS,
                        "dropped_iterations": 0,
                    },
                },
                "servers": {
                    server.name: {
                        "start_to_ready_s": server.start_to_ready_s,
                        "peak_rss_per_worker_mb": server.peak_rss_per_worker_mb(),
                    }
                    for server in found.values()
                },
                "endpoints": summarize(bench, best, fixed_rates),
                "crowd": crowd,
                "in_process": app_alone,
                "runs": [run.__dict__ for run in bench.runs],
            }
            results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
            (arguments.output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
            (arguments.output / "results.md").write_text(markdown(results))
            chart(bench.runs, arguments.output / "rate_vs_p99.png")
            print((arguments.output / "results.md").read_text())
            print(f"done in {results['meta']['elapsed_s']} s; results in {arguments.output}")
        finally:
            for server in running:
                server.stop()
            provider.close()
            asyncio.run(drop_database(maintenance_url, url))


if __name__ == "__main__":
    main()
