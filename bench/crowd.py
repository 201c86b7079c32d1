"""Many clients, few requests each (bench/crowd.js): CLIENTS keep-alive connections
held open at a modest total rate, every server in turn, each round. Reports the
latency, the connections each server held while the crowd ran (counted in
/proc/net/tcp) and its CPU per 1,000 requests, its PostgreSQL backends' too."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search import Bench, spread
from servers import BENCH, BIN, SERVERS, Server, cpu_seconds_between, cpu_ticks

ESTABLISHED = "01"


@dataclass(frozen=True)
class Crowd:
    clients: int
    rate: int  # requests per second, all clients together
    seconds: int
    rounds: int


FULL_CROWD = Crowd(clients=2000, rate=400, seconds=30, rounds=2)
QUICK_CROWD = Crowd(clients=50, rate=50, seconds=3, rounds=1)


def established_connections(port: int) -> int:
    """Established TCP connections whose local end is 127.0.0.1:`port` (/proc/net/tcp)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == ESTABLISHED:
            count += 1
    return count


def crowd_run(bench: Bench, server: Server, crowd: Crowd, round_number: int) -> dict[str, Any]:
    summary_file = bench.work / f"crowd-{uuid.uuid4().hex}.json"
    env = {
        **bench.k6_environment(server, summary_file),
        "CLIENTS": str(crowd.clients),
        "RATE": str(crowd.rate),
        "DURATION": f"{crowd.seconds}s",
    }
    server_before = cpu_ticks(server.pids())
    db_before = cpu_ticks(server.backend_pids(bench.database_url))
    k6 = subprocess.Popen(
        [str(BIN / "k6"), "run", "--quiet", "--no-color", str(BENCH / "crowd.js")],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    held = 0
    try:
        # The most connections open at once, sampled every second while the crowd runs:
        # one sample at a guessed moment undercounted clients still connecting.
        deadline = time.monotonic() + crowd.seconds + 120
        while k6.poll() is None and time.monotonic() < deadline:
            held = max(held, established_connections(server.port))
            time.sleep(1)
    finally:
        if k6.poll() is None:
            k6.kill()
            k6.wait()
    if k6.returncode != 0:
        message = f"k6 (crowd) exited with {k6.returncode}"
        raise RuntimeError(message)
    cpu = cpu_seconds_between(server_before, cpu_ticks(server.pids()))
    db_cpu = cpu_seconds_between(db_before, cpu_ticks(server.backend_pids(bench.database_url)))
    summary = json.loads(summary_file.read_text())
    requests = summary["requests"]
    run = {
        "server": server.name,
        "round": round_number,
        "connections_held": held,
        "rate_achieved": requests / crowd.seconds,
        "cpu_seconds_per_1000_requests": cpu / requests * 1000 if requests else None,
        "postgres_cpu_seconds_per_1000_requests": db_cpu / requests * 1000 if requests else None,
        **summary,
    }
    print(
        f"  r{round_number} crowd  {server.name:22} {crowd.clients} clients, {held} held, "
        f"{run['rate_achieved']:.0f}/s p50={summary['p50_ms']:.2f} p99={summary['p99_ms']:.2f} ms "
        f"err={summary['failed_rate']:.3f}",
        flush=True,
    )
    return run


def crowds(bench: Bench, crowd: Crowd) -> dict[str, Any]:
    """Every server in turn (A B C A B C ...), each round; per server the spread of the
    rounds, and the rendered service's p99 over each other server's."""
    runs = [
        crowd_run(bench, bench.servers[name], crowd, round_number)
        for round_number in range(1, crowd.rounds + 1)
        for name in SERVERS
    ]
    per_server: dict[str, Any] = {}
    for name in SERVERS:
        mine = [run for run in runs if run["server"] == name]
        per_server[name] = {
            key: spread([run[key] for run in mine if run[key] is not None])
            for key in (
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "failed_rate",
                "connections_held",
                "rate_achieved",
                "cpu_seconds_per_1000_requests",
                "postgres_cpu_seconds_per_1000_requests",
            )
        }
    p99 = {name: [run["p99_ms"] for run in runs if run["server"] == name] for name in SERVERS}
    ratios = {
        f"p99_rendered_to_{name}": spread(
            [mine / other for mine, other in zip(p99["rendered"], p99[name], strict=True) if other]
        )
        for name in SERVERS
        if name != "rendered"
    }
    return {
        "clients": crowd.clients,
        "rate": crowd.rate,
        "seconds": crowd.seconds,
        "servers": per_server,
        **ratios,
        "runs": runs,
    }
