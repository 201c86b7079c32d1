"""Smokes of the benchmark (bench/run.py --quick): it renders, starts every
server, measures each endpoint with the real k6 and writes its three files; and of
the instruction count (bench/instructions.py --quick). Speed is the benchmark's
business, so nothing here asserts a timing or a count."""

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
def test_quick_instruction_count_measures_every_app_and_writes_its_files(tmp_path: Path) -> None:
    script = TEMPLATE / "bench" / "instructions.py"
    subprocess.run(
        [sys.executable, str(script), "--quick", "--output", str(tmp_path)],
        check=True,
        timeout=600,
    )

    results = json.loads((tmp_path / "instructions.json").read_text())
    figures = results["m_instructions_per_request"]
    assert set(figures) == {"ready"}
    assert set(figures["ready"]) == {"rendered", "bare_fastapi", "baseline"}
    assert all(figure > 0 for figure in figures["ready"].values()), figures
    table = (tmp_path / "instructions.md").read_text()
    assert "| ready |" in table
    assert "rendered / bare FastAPI" in table
