"""What the transactional outbox costs and delivers, through HTTP (`make bench-outbox`).

Renders the default project twice (`background_worker=no` and `yes`, both with
auth=none, unlike `make bench`: the outbox's cost apart from a token's), each on a
fresh migrated and seeded database, and measures:

1. transfers/s, closed loop (bench/outbox.js: CLIENTS k6 clients POSTing transfers
   as fast as answered), the rendered service started as bench/servers.py starts it
   (one uvicorn worker), the two renderings alternated ROUNDS times in this one run:
   the ratio with/without per round, its median and range. With the outbox, one
   worker process runs during the rounds (no subscriptions: its relay marks each event
   relayed, as it would with none; deliveries are measured below). With
   --idle-worker-too, each round also runs the outbox rendering with no worker
   running: the write's own cost, apart from the worker's CPU on the same cores.
2. events/s delivered by one worker process to a local receiver (a backlog of
   transfer.completed events made beforehand, first to last delivery);
3. the delay from commit to delivery (receipt time minus the event's created_at, its
   transaction's start) at a steady half of that rate: p50, p99, max;
4. (--instructions) millions of instructions per transfer in the API's process,
   counted by callgrind as bench/instructions.py counts them (PostgreSQL's not).

Timing on a shared machine is noisy: report the ratio of alternated runs and say
what else ran. Writes build/bench-outbox/outbox.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
from instructions import Counts, Project, instructions
from servers import (
    ACCOUNTS,
    BENCH,
    BIN,
    PACKAGE,
    TEMPLATE,
    Server,
    database_urls,
    drop_database,
    free_port,
    render,
    run_command,
    seed,
    servers,
)

VARIANTS = ("no", "yes")
# As the gate counts a transfer: the API process only, not PostgreSQL's backends.
_MARK_RELAYED = (
    "WITH marked AS (UPDATE outbox_events SET relayed = true WHERE NOT relayed RETURNING 1)"
    " SELECT count(*) FROM marked"
)
INSTRUCTION_COUNTS = Counts(endpoints=("transfer",), requests=200, warmup=300)


def render_variant(work: Path, background_worker: str) -> Path:
    out = work / f"worker-{background_worker}"
    # Each run renders afresh: an earlier run's project (one that failed, say) would make
    # cookiecutter refuse to render over it.
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    # No authentication: what the outbox adds to a transfer is measured apart from what
    # verifying a token adds (bench/auth_cost.py), and the receiver's subscription and
    # bench/outbox.js need no credentials.
    return render(out, "auth=none", f"background_worker={background_worker}")


def prepare(project: Path, url: str) -> int:
    run_command(
        ["make", "init-db"], cwd=project, env={**os.environ, "APP_DATABASE__URL": url}, timeout=120
    )
    return asyncio.run(seed(url))


def service(project: Path, url: str, work: Path) -> Server:
    server = servers(project, url, 1, work)["rendered"]
    # The receiver listens on 127.0.0.1: the SSRF guard must let it through.
    server.env["APP_WEBHOOKS__ALLOW_PRIVATE_DESTINATIONS"] = "true"
    return server


def k6(server: Server, script: str, seconds: int, **settings: str) -> dict[str, Any]:
    """One k6 run of `script` (in bench/) against the server; its JSON summary."""
    summary = server.log.parent / f"k6-{uuid.uuid4().hex}.json"
    env = {
        **os.environ,
        **settings,
        "K6_NO_USAGE_REPORT": "true",
        "BASE_URL": server.url,
        "DURATION": f"{seconds}s",
        "ACCOUNTS": str(ACCOUNTS),
        "RUN_ID": uuid.uuid4().hex,
        "SUMMARY_FILE": str(summary),
    }
    subprocess.run(
        [str(BIN / "k6"), "run", "--quiet", "--no-color", str(BENCH / script)],
        env=env,
        check=True,
        timeout=seconds + 60,
        stdout=subprocess.DEVNULL,
    )
    result: dict[str, Any] = json.loads(summary.read_text())
    return result


def k6_closed_loop(server: Server, first_account: int, clients: int, seconds: int) -> int:
    """Transfers created (201) by `clients` closed-loop clients in `seconds`."""
    summary = k6(server, "outbox.js", seconds, VUS=str(clients), FIRST_ACCOUNT=str(first_account))
    return int(summary["created"])


def k6_steady(server: Server, first_account: int, rate: int, seconds: int) -> dict[str, Any]:
    """Transfers at a constant arrival rate (bench/scenario.js, as bench/run.py runs it)."""
    return k6(
        server,
        "scenario.js",
        seconds,
        ENDPOINT="transfer",
        RATE=str(rate),
        FIRST_ACCOUNT=str(first_account),
    )


class Receiver:
    """A local webhook receiver: answers 204 at once, keeps (webhook-id, receipt
    time, the event's created_at) of each delivery."""

    def __init__(self) -> None:
        self.received: list[tuple[str, float, str]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                now = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                created = json.loads(body)["data"].get("created_at", "")
                with receiver.lock:
                    receiver.received.append((self.headers["webhook-id"], now, created))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self) -> int:
        with self.lock:
            return len({webhook_id for webhook_id, _, _ in self.received})

    def close(self) -> None:
        self.server.shutdown()


def subscribe(server: Server, url: str) -> None:
    request = urllib.request.Request(
        f"{server.url}/v1/webhook-subscriptions",
        data=json.dumps({"url": url, "event_types": ["transfer.completed"]}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201, response.status


def start_worker(project: Path, server: Server, log: Path) -> subprocess.Popen[bytes]:
    python = str(project / "backend" / ".venv" / "bin" / "python")
    port = free_port()
    env = {**server.env, "APP_WORKER__METRICS_PORT": str(port)}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [python, "-m", f"{PACKAGE}.worker"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1):
                return process
        except OSError:
            assert process.poll() is None, f"the worker exited; see {log}"
            time.sleep(0.05)
    raise RuntimeError(f"the worker did not start; see {log}")


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


async def scalar(url: str, query: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval(query))
    finally:
        await connection.close()


def wait_for(receiver: Receiver, expected: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while receiver.count() < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{receiver.count()} of {expected} events delivered")
        time.sleep(0.05)


def deliveries(
    project: Path, server: Server, url: str, first_account: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Events/s of one worker draining a backlog; then delay at half that rate."""
    receiver = Receiver()
    server.start()
    try:
        # Only events made from here on: what the throughput rounds left pending is moot.
        asyncio.run(scalar(url, "WITH d AS (DELETE FROM outbox_events RETURNING 1) SELECT 0"))
        subscribe(server, receiver.url)
        k6_closed_loop(server, first_account, args.clients, args.backlog_seconds)
        backlog = asyncio.run(scalar(url, "SELECT count(*) FROM outbox_events"))
        worker = start_worker(project, server, server.log.parent / "worker-drain.log")
        try:
            wait_for(receiver, backlog, 600)
        finally:
            stop_worker(worker)
        times = sorted(received for _, received, _ in receiver.received)
        per_second = (len(times) - 1) / (times[-1] - times[0])
        receiver.received.clear()
        rate = max(1, int(per_second / 2))
        worker = start_worker(project, server, server.log.parent / "worker-steady.log")
        try:
            steady = k6_steady(server, first_account, rate, args.latency_seconds)
            made = asyncio.run(scalar(url, "SELECT count(*) FROM outbox_events")) - backlog
            wait_for(receiver, made, 120)
        finally:
            stop_worker(worker)
    finally:
        server.stop()
        receiver.close()
    delays = sorted(
        received - datetime.fromisoformat(created).timestamp()
        for _, received, created in receiver.received
    )
    return {
        "backlog_events": backlog,
        "events_per_second": round(per_second, 1),
        "steady_rate": rate,
        "steady_k6": steady,
        "delivered": len(delays),
        "delay_ms": {
            "p50": round(1000 * statistics.median(delays), 1),
            "p99": round(1000 * statistics.quantiles(delays, n=100)[98], 1),
            "max": round(1000 * delays[-1], 1),
        },
    }


def throughput(
    projects: dict[str, Path],
    services: dict[str, Server],
    firsts: dict[str, int],
    urls: dict[str, str],
    args: argparse.Namespace,
) -> list[dict[str, float]]:
    """The alternated closed-loop rounds: transfers/s of each run, and the ratios."""
    # (rendering, worker running): with the outbox, its relay runs too, as deployed:
    # moving events to the queue is part of what the outbox costs the database.
    runs = [("no", False), ("yes", True)] + ([("yes", False)] if args.idle_worker_too else [])
    rounds = []
    for number in range(1, args.rounds + 1):
        measured = {}
        # Alternate the order, so a drift in the machine's load favours none.
        for variant, with_worker in runs if number % 2 else runs[::-1]:
            server = services[variant]
            server.start()
            relay = (
                start_worker(projects[variant], server, server.log.parent / "worker-relay.log")
                if with_worker
                else None
            )
            try:
                created = k6_closed_loop(server, firsts[variant], args.clients, args.seconds)
            finally:
                if relay is not None:
                    stop_worker(relay)
                server.stop()
            if variant == "yes" and not with_worker:
                # What a relay would have done, so the next run's relay finds no backlog.
                asyncio.run(scalar(urls[variant], _MARK_RELAYED))
            measured[(variant, with_worker)] = created / args.seconds
        entry = {"without": measured[("no", False)], "with": measured[("yes", True)]}
        entry["ratio"] = entry["with"] / entry["without"]
        if args.idle_worker_too:
            entry["with_no_worker"] = measured[("yes", False)]
            entry["ratio_no_worker"] = entry["with_no_worker"] / entry["without"]
        rounds.append(entry)
        print(f"round {number}: {entry}", flush=True)
    return rounds


def ratio_no_worker(rounds: list[dict[str, float]]) -> dict[str, Any]:
    ratios = [entry["ratio_no_worker"] for entry in rounds]
    return {
        "ratio_no_worker_median": round(statistics.median(ratios), 3),
        "ratio_no_worker_range": [round(min(ratios), 3), round(max(ratios), 3)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="per throughput run")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--backlog-seconds", type=int, default=5)
    parser.add_argument("--latency-seconds", type=int, default=20)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions per transfer in the API process (callgrind, ~4 min)",
    )
    parser.add_argument(
        "--idle-worker-too",
        action="store_true",
        help="each round also measures the outbox with no worker running (the write alone)",
    )
    parser.add_argument("--output", type=Path, default=TEMPLATE / "build" / "bench-outbox")
    args = parser.parse_args()
    work = args.output
    work.mkdir(parents=True, exist_ok=True)
    maintenance = database_urls()[0]
    urls = {variant: database_urls()[1] for variant in VARIANTS}
    projects = {variant: render_variant(work, variant) for variant in VARIANTS}
    try:
        firsts = {variant: prepare(projects[variant], urls[variant]) for variant in VARIANTS}
        services = {
            variant: service(projects[variant], urls[variant], work / f"worker-{variant}")
            for variant in VARIANTS
        }
        rounds = throughput(projects, services, firsts, urls, args)
        counted = {}
        if args.instructions:
            for variant in VARIANTS:
                project = Project(projects[variant], firsts[variant], work / f"worker-{variant}")
                counted[variant] = instructions(
                    project, services[variant], "transfer", INSTRUCTION_COUNTS
                )
        ratios = [entry["ratio"] for entry in rounds]
        result = {
            "rounds": rounds,
            "ratio_median": round(statistics.median(ratios), 3),
            "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
            **(ratio_no_worker(rounds) if args.idle_worker_too else {}),
            "load_average": os.getloadavg(),
            "api_million_instructions_per_transfer": counted,
            "delivery": deliveries(
                projects["yes"], services["yes"], urls["yes"], firsts["yes"], args
            ),
        }
    finally:
        for url in urls.values():
            asyncio.run(drop_database(maintenance, url))
    (work / "outbox.json").write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
