"""The bench's reading of the rendered service's stall histograms (bench/search.py's
grown_between, report.py's stalls table), on made-up scrapes: no server, no k6."""

from __future__ import annotations

import math
import sys

from .support.paths import TEMPLATE

sys.path.insert(0, str(TEMPLATE / "bench"))

from report import markdown_stalls_cell, stalls
from search import Run, grown_between

BEFORE = {0.001: 5.0, 0.25: 5.0, math.inf: 5.0}


def test_observations_within_a_bound_read_as_at_most_that_bound() -> None:
    after = {0.001: 6.0, 0.25: 8.0, math.inf: 8.0}
    assert grown_between(BEFORE, after) == (3, 250.0, None)


def test_an_observation_past_the_last_bound_reads_as_over_it_not_as_none_measured() -> None:
    after = {0.001: 7.0, 0.25: 7.0, math.inf: 8.0}
    assert grown_between(BEFORE, after) == (3, None, 250.0)


def run(gc_pauses: int, gc_at_most: float | None, gc_over: float | None) -> Run:
    return Run(
        server="rendered", endpoint="account", round=1, rate=10, kind="fixed",
        requests=10, failed_rate=0.0, dropped_iterations=0, p50_ms=1.0, p95_ms=1.0,
        p99_ms=1.0, cpu_seconds=0.1, db_cpu_seconds=0.1, machine_busy=0.5,
        loop_lag_samples=2, loop_lag_max_ms=1.0, loop_lag_over_ms=None,
        gc_pauses=gc_pauses, gc_pause_max_ms=gc_at_most, gc_pause_over_ms=gc_over,
    )  # fmt: skip


def test_one_run_past_the_last_bound_makes_the_longest_over_it_in_the_table() -> None:
    seen = stalls([run(4, 1.0, None), run(1, None, 250.0)])
    assert seen is not None
    assert (seen["gc_pauses"], seen["gc_pause_max_ms_at_most"]) == (5, None)
    assert seen["gc_pause_max_ms_over"] == 250.0
    assert markdown_stalls_cell(seen, "gc_pause") == "> 250"
    quiet = stalls([run(0, None, None)])
    assert quiet is not None
    assert markdown_stalls_cell(quiet, "gc_pause") == "none measured"
