"""What asyncpg's reset query costs: one primary-key read per pool acquire/release,
with the default reset on release and with none (as the rendered db/pool.py does).

    python bench/pool_reset.py postgresql://postgres@127.0.0.1:5432/<a migrated, seeded db>

Sequential on one connection, so the figures are per request, not throughput:
wall time, and CPU of the client and of the PostgreSQL backend (from /proc, so
the database must run on this machine). Median of 3 alternating runs.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import asyncpg
import uvloop

GET = "SELECT id, owner, currency, balance_minor, created_at FROM accounts WHERE id = $1"
REQUESTS = 4000
ROUNDS = 3


class NoResetConnection(asyncpg.Connection):
    def get_reset_query(self) -> str:
        return ""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def per_request_us(url: str, connection_class: type[asyncpg.Connection]) -> list[float]:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1, connection_class=connection_class)
    try:
        async with pool.acquire() as connection:
            backend = await connection.fetchval("SELECT pg_backend_pid()")
        backend_before, client_before = cpu_seconds(backend), time.process_time()
        started = time.perf_counter()
        for number in range(REQUESTS):
            async with pool.acquire() as connection:
                await connection.fetchrow(GET, 1 + number % 1000)
        wall = time.perf_counter() - started
        client = time.process_time() - client_before
        backend_cpu = cpu_seconds(backend) - backend_before
    finally:
        await pool.close()
    return [seconds / REQUESTS * 1e6 for seconds in (wall, client, backend_cpu)]


async def main(url: str) -> None:
    variants: dict[str, type[asyncpg.Connection]] = {
        "default reset": asyncpg.Connection,
        "no reset": NoResetConnection,
    }
    figures: dict[str, list[list[float]]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, connection_class in variants.items():
            figures[name].append(await per_request_us(url, connection_class))
    for name, runs in figures.items():
        wall, client, backend = (statistics.median(column) for column in zip(*runs, strict=True))
        print(
            f"{name:14} µs per request: wall {wall:5.0f}, client CPU {client:4.0f}, "
            f"PostgreSQL CPU {backend:4.0f}"
        )


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1]))
