"""The report of a run: spreads of the rounds, results.json's summary, results.md's
tables and the rate-vs-p99 chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from search import FIXED_RATE_MACHINE_BUSY, MAX_P99_MS, Bench, Run, spread
from servers import BENCH_APPS, ENDPOINTS, LOGGING_OFF, SERVERS


def summarize(
    bench: Bench, best: dict[tuple[str, str], list[int]], fixed_rates: dict[str, int]
) -> dict[str, Any]:
    endpoints: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        names = [*SERVERS, *([LOGGING_OFF] if endpoint == "account" else [])]
        entry: dict[str, Any] = {"fixed_rate": fixed_rates.get(endpoint), "servers": {}}
        for name in names:
            fixed = fixed_runs(bench, name, endpoint)
            entry["servers"][name] = {
                "max_sustained_rate": spread([float(rate) for rate in best[name, endpoint]]),
                "max_sustained_rate_per_round": best[name, endpoint],
                "fixed_rate_latency_ms": {
                    stat: spread([getattr(r, f"{stat}_ms") for r in fixed])
                    for stat in ("p50", "p95", "p99")
                },
                "cpu_seconds_per_1000_requests": spread(
                    [r.cpu_seconds / r.requests * 1000 for r in fixed if r.requests]
                ),
                "postgres_cpu_seconds_per_1000_requests": spread(
                    [r.db_cpu_seconds / r.requests * 1000 for r in fixed if r.requests]
                ),
                "machine_busy_at_fixed_rate": spread([r.machine_busy for r in fixed]),
                "stalls_at_fixed_rate": stalls(fixed),
            }
        for floor in BENCH_APPS:
            entry[f"ratio_rendered_to_{floor}"] = spread(
                [
                    rendered / other
                    for rendered, other in zip(
                        best["rendered", endpoint], best[floor, endpoint], strict=True
                    )
                    if other
                ]
            )
        entry["fixed_rate_p99_rendered_to_baseline"] = spread(
            [
                rendered.p99_ms / baseline.p99_ms
                for rendered, baseline in zip(
                    fixed_runs(bench, "rendered", endpoint),
                    fixed_runs(bench, "baseline", endpoint),
                    strict=True,
                )
                if baseline.p99_ms
            ]
        )
        if endpoint == "account":
            entry["ratio_logging_on_to_off"] = spread(
                [
                    on / off
                    for on, off in zip(
                        best["rendered", endpoint], best[LOGGING_OFF, endpoint], strict=True
                    )
                    if off
                ]
            )
        endpoints[endpoint] = entry
    return endpoints


def fixed_runs(bench: Bench, name: str, endpoint: str) -> list[Run]:
    """The server's runs at the endpoint's fixed rate, one per round, in round order."""
    return [
        r for r in bench.runs if r.server == name and r.endpoint == endpoint and r.kind == "fixed"
    ]


def stalls(fixed: list[Run]) -> dict[str, Any] | None:
    """The event-loop lag samples and garbage collections of the fixed-rate runs, and
    the histogram bounds that held the largest of each; None for a server without
    those metrics."""
    measured = [r for r in fixed if r.loop_lag_samples is not None]
    if not measured:
        return None

    def largest(values: list[float | None]) -> float | None:
        return max((value for value in values if value is not None), default=None)

    lag_over = largest([r.loop_lag_over_ms for r in measured])
    pause_over = largest([r.gc_pause_over_ms for r in measured])
    # A run whose longest was past the last bound: no bound holds them all.
    return {
        "lag_samples": sum(r.loop_lag_samples or 0 for r in measured),
        "lag_max_ms_at_most": None
        if lag_over is not None
        else largest([r.loop_lag_max_ms for r in measured]),
        "lag_max_ms_over": lag_over,
        "gc_pauses": sum(r.gc_pauses or 0 for r in measured),
        "gc_pause_max_ms_at_most": None
        if pause_over is not None
        else largest([r.gc_pause_max_ms for r in measured]),
        "gc_pause_max_ms_over": pause_over,
    }


def markdown_stalls_cell(seen: dict[str, Any], prefix: str) -> str:
    """The stall table's cell for the longest lag ("lag") or collection ("gc_pause")."""
    over = seen[f"{prefix}_max_ms_over"]
    if over is not None:
        return f"> {over:g}"
    at_most = seen[f"{prefix}_max_ms_at_most"]
    return "none measured" if at_most is None else f"{at_most:g}"


def markdown(results: dict[str, Any]) -> str:
    def fmt(value: dict[str, float] | None, digits: int = 0) -> str:
        if value is None:
            return "n/a"
        return f"{value['median']:.{digits}f} ({value['min']:.{digits}f}–{value['max']:.{digits}f})"

    meta = results["meta"]
    lines = [
        "# Benchmark: rendered service vs bare FastAPI and a raw asyncpg baseline "
        f"({meta['mode']})",
        "",
        f"{meta['date']} · {meta['cpus']} CPUs (shared with other work: figures are ratios of "
        f"alternating runs) · {meta['workers']} workers each · pool {meta['pool']} per worker · "
        f"{meta['rounds']} rounds · k6 {meta['k6']} constant-arrival-rate, "
        f"{meta['step_seconds']} s per search step, {meta['fixed_seconds']} s at the fixed rate.",
        f"Authentication: {meta['authentication']}.",
        "",
        "Max rate: the highest constant arrival rate with < 1% errors, p99 < 50 ms and no "
        "dropped iterations; median of the rounds (min–max). CPU: seconds of the server's "
        "processes (supervisor and workers), and of the PostgreSQL backends serving its "
        "connections, per 1,000 requests at the fixed rate.",
        "",
        "| endpoint | server | max rate (req/s) | p50 / p95 / p99 at fixed rate (ms) "
        "| machine busy at fixed rate | CPU s / 1k req | PostgreSQL CPU s / 1k req |",
        "|---|---|---|---|---|---|---|",
    ]
    for endpoint, entry in results["endpoints"].items():
        for name, server in entry["servers"].items():
            latency = server["fixed_rate_latency_ms"]
            lines.append(
                f"| {endpoint} @ {entry['fixed_rate']}/s | {name} | "
                f"{fmt(server['max_sustained_rate'])} | "
                f"{' / '.join(fmt(latency[s], 1) for s in ('p50', 'p95', 'p99'))} | "
                f"{percent(server['machine_busy_at_fixed_rate'])} | "
                f"{fmt(server['cpu_seconds_per_1000_requests'], 3)} | "
                f"{fmt(server['postgres_cpu_seconds_per_1000_requests'], 3)} |"
            )
    lines += [
        "",
        "Fixed rate: where the rendered service kept the machine (k6, PostgreSQL and the "
        f"servers on the same cores) about {FIXED_RATE_MACHINE_BUSY:.0%} busy in the first "
        "round's search, at most what the slowest server sustained. The rendered service's "
        "stalls at that rate, from its own metrics: its event-loop lag (a sample per worker "
        "per metrics.pool_sample_seconds) and every garbage collection's pause. Short ones "
        "say its p99 is time spent queueing for the CPU, not a worker held up:",
        "",
        "| endpoint | lag samples | largest lag at most (ms) | collections "
        "| longest collection at most (ms) |",
        "|---|---|---|---|---|",
    ]

    for endpoint, entry in results["endpoints"].items():
        seen = entry["servers"]["rendered"]["stalls_at_fixed_rate"]
        if seen is not None:
            lines.append(
                f"| {endpoint} | {seen['lag_samples']} | {markdown_stalls_cell(seen, 'lag')} "
                f"| {seen['gc_pauses']} | {markdown_stalls_cell(seen, 'gc_pause')} |"
            )
    lines += [
        "",
        "In process (bench/in_process.py): each app called directly, 8 requests at a time, "
        "no HTTP server and no k6; µs of CPU per request, median of the rounds (min–max).",
        "",
        "| endpoint | rendered | rendered, logging off | bare FastAPI | baseline "
        "| rendered − baseline |",
        "|---|---|---|---|---|---|",
    ]
    for endpoint, entry in results["in_process"].items():
        cpu = entry["cpu_us_per_request"]
        lines.append(
            f"| {endpoint} | {fmt(cpu['rendered'])} | {fmt(cpu.get(LOGGING_OFF))} | "
            f"{fmt(cpu['bare_fastapi'])} | {fmt(cpu['baseline'])} | "
            f"{fmt(entry['rendered_minus_baseline_us'])} |"
        )
    crowd = results["crowd"]
    lines += [
        "",
        f"Many clients (bench/crowd.js): {crowd['clients']} keep-alive clients reading "
        f"accounts, each thinking between requests, about {crowd['rate']} req/s together, "
        f"{crowd['seconds']} s per server per round; median of the rounds (min–max). "
        "Connections: established to the server's port, counted once every client had "
        "time to connect.",
        "",
        "| server | connections held | req/s | p50 / p95 / p99 (ms) | errors "
        "| CPU s / 1k req | PostgreSQL CPU s / 1k req |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, server in crowd["servers"].items():
        lines.append(
            f"| {name} | {fmt(server['connections_held'])} | {fmt(server['rate_achieved'])} | "
            f"{' / '.join(fmt(server[f'{s}_ms'], 1) for s in ('p50', 'p95', 'p99'))} | "
            f"{fmt(server['failed_rate'], 3)} | {fmt(server['cpu_seconds_per_1000_requests'], 3)} "
            f"| {fmt(server['postgres_cpu_seconds_per_1000_requests'], 3)} |"
        )
    lines += ["", "| measure | median (min–max) | goal |", "|---|---|---|"]
    goals = {
        "bare_fastapi": {"account": "≥ 1.0", "transfer": "≥ 1.0", "ready": "—"},
        "baseline": {"account": "≥ 0.7", "transfer": "≥ 0.7", "ready": "—"},
    }
    for endpoint, entry in results["endpoints"].items():
        for floor in BENCH_APPS:
            lines.append(
                f"| {endpoint}: rendered / {floor} max rate | "
                f"{fmt(entry[f'ratio_rendered_to_{floor}'], 2)} | {goals[floor][endpoint]} |"
            )
    for endpoint, entry in results["endpoints"].items():
        lines.append(
            f"| {endpoint}: rendered p99 / baseline p99 at the fixed rate | "
            f"{fmt(entry['fixed_rate_p99_rendered_to_baseline'], 2)} | "
            f"{'≤ 2' if endpoint != 'ready' else '—'} |"
        )
    lines.append(
        f"| many clients: rendered p99 / baseline p99 | "
        f"{fmt(crowd['p99_rendered_to_baseline'], 2)} | ≤ 2 |"
    )
    logging_ratio = results["endpoints"]["account"].get("ratio_logging_on_to_off")
    lines.append(f"| account: logging on / off max rate | {fmt(logging_ratio, 2)} | ≥ 0.90 |")
    for name, server in results["servers"].items():
        ready = server["start_to_ready_s"]
        rss = max(server["peak_rss_per_worker_mb"], default=0.0)
        lines.append(f"| {name}: start to ready (s) | {ready:.2f} | ≤ 2 |")
        lines.append(f"| {name}: peak RSS per worker (MB) | {rss:.1f} | ≤ 120 |")
    return "\n".join(lines) + "\n"


def percent(value: dict[str, float] | None) -> str:
    if value is None:
        return "n/a"
    return f"{value['median']:.0%} ({value['min']:.0%}–{value['max']:.0%})"


def chart(runs: list[Run], path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - only the chart needs it, and headless

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(1, len(ENDPOINTS), figsize=(5 * len(ENDPOINTS), 4))
    colors = {
        "rendered": "tab:blue",
        "bare_fastapi": "tab:purple",
        "baseline": "tab:orange",
        LOGGING_OFF: "tab:green",
    }
    for axis, endpoint in zip(axes, ENDPOINTS, strict=True):
        for name, color in colors.items():
            points = sorted(
                (r.rate, r.p99_ms)
                for r in runs
                if r.server == name and r.endpoint == endpoint and r.requests
            )
            if points:
                axis.plot(
                    *zip(*points, strict=True),
                    "o-",
                    color=color,
                    label=name,
                    markersize=3,
                    linewidth=0.8,
                    alpha=0.8,
                )
        axis.axhline(MAX_P99_MS, color="grey", linestyle="--", linewidth=0.8)
        axis.set_title(endpoint)
        axis.set_xlabel("constant arrival rate (req/s)")
        axis.set_ylabel("p99 (ms)")
        axis.set_yscale("log")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
