"""Smokes of the benchmark (bench/run.py --quick): it renders, starts every
server, measures each endpoint with the real k6 and writes its three files; and of
the instruction gate (bench/instructions.py --gate), which fails when a server's
instructions per request grow past the committed figures. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .support.paths import TEMPLATE

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.xdist_group("k6")
def test_quick_benchmark_measures_every_endpoint_and_writes_its_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(TEMPLATE / "bench" / "run.py"), "--quick", "--output", str(tmp_path)],
        check=True,
        timeout=240,
    )

    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["endpoints"]) == {"account", "transfer", "ready"}
    for endpoint, entry in results["endpoints"].items():
        assert set(entry["servers"]) >= {"rendered", "bare_fastapi", "baseline"}, endpoint
        for name, server in entry["servers"].items():
            assert server["fixed_rate_latency_ms"]["p99"] is not None, (endpoint, name)
    measured = {(run["server"], run["endpoint"]) for run in results["runs"] if run["requests"]}
    assert measured == {
        (server, endpoint)
        for server in ("rendered", "bare_fastapi", "baseline")
        for endpoint in ("account", "transfer", "ready")
    } | {("rendered_logging_off", "account")}
    for endpoint, entry in results["in_process"].items():
        servers = entry["cpu_us_per_request"]
        logging_off = {"rendered_logging_off"} if endpoint == "account" else set()
        expected = {"rendered", "bare_fastapi", "baseline"} | logging_off
        assert set(servers) == expected, endpoint
        assert all(server["median"] > 0 for server in servers.values()), (endpoint, servers)
    for name, server in results["servers"].items():
        assert server["start_to_ready_s"] is not None, name
        assert len(server["peak_rss_per_worker_mb"]) == 2, name  # the default two workers
    table = (tmp_path / "results.md").read_text()
    assert "| account @" in table
    assert "rendered / baseline" in table
    assert "rendered / bare_fastapi" in table
    assert "| rendered − baseline |" in table
    assert (tmp_path / "rate_vs_p99.png").read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.slow
@pytest.mark.xdist_group("instructions")
def test_instructions_per_request_stay_within_the_committed_figures(tmp_path: Path) -> None:
    """The regression gate: callgrind's count per read and per transfer of every
    server, against bench/results/gate.json, fails past +5%
    (update: python bench/instructions.py --gate --update)."""
    script = TEMPLATE / "bench" / "instructions.py"
    done = subprocess.run(
        [sys.executable, str(script), "--gate", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )

    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    for server in ("rendered", "bare_fastapi", "baseline"):
        for endpoint in ("account", "transfer"):
            assert f"  {server:12} {endpoint:8} " in done.stdout, (server, endpoint, done.stdout)
