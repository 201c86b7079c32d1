"""Smokes of the benchmark (bench/run.py --quick): it renders the default answers
(auth=oidc), starts every server, measures each endpoint with the real k6, the
rendered ones accepting the run's token, and writes its three files; of
the instruction gate (bench/instructions.py --gate), which fails when a server's
instructions per request grow past the committed figures; and of the rendered
project's own gate (make bench-gate). No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .support.commands import run, with_tools
from .support.paths import TEMPLATE
from .support.rendering import package_of

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
    for k6_run in results["runs"]:
        # The rendered servers refuse a read or transfer without the run's token (401).
        assert k6_run["failed_rate"] < 0.5, k6_run
        # k6 alone keeps part of the machine busy; a share past 1 would be misread ticks.
        assert 0 < k6_run["machine_busy"] <= 1, k6_run
        # Only the rendered servers export their event loop's lag and their collections'
        # pauses.
        has_stalls = k6_run["kind"] == "fixed" and k6_run["server"].startswith("rendered")
        assert (k6_run["loop_lag_samples"] is not None) == has_stalls, k6_run
        assert (k6_run["gc_pauses"] is not None) == has_stalls, k6_run
    # A sample a second per worker: the quick run's one-second fixed runs take a few.
    assert sum(k6_run["loop_lag_samples"] or 0 for k6_run in results["runs"]) > 0
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
    assert "machine busy at fixed rate" in table
    assert "| longest collection at most (ms) |" in table
    assert "rendered p99 / baseline p99 at the fixed rate" in table
    assert "rendered / baseline" in table
    assert "rendered / bare_fastapi" in table
    assert "| rendered − baseline |" in table
    assert (tmp_path / "rate_vs_p99.png").read_bytes().startswith(PNG_SIGNATURE)


# The search's outcome when a server sustained no step: the rendered one held its
# single step of 50 requests a second, 30% busy; the baseline failed its own.
NOTHING_SUSTAINED = """
import sys
sys.path.insert(0, sys.argv[1])
from search import Run, fixed_rate
held = Run("rendered", "account", 1, 50, "search", 50, 0.0, 0, 1.0, 2.0, 3.0, 0.1, 0.1, 0.3)
best = {("rendered", "account"): [50], ("baseline", "account"): [0]}
print(fixed_rate([held], "account", best, ["rendered", "baseline"]))
"""


def test_the_fixed_rate_is_one_k6_accepts_when_a_server_sustained_nothing() -> None:
    """The quick smoke's one-second step can fail on a busy machine: k6 refuses a
    fixed run at 0 requests a second, which stopped the whole benchmark."""
    done = run([sys.executable, "-c", NOTHING_SUSTAINED, str(TEMPLATE / "bench")])

    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0


# Run by the rendered project's interpreter: the modules a worker imports (its own
# and its dependencies') whose bytecode is not on disk, so would be compiled at start.
UNCOMPILED = """
import importlib.util, os, sys
import {package}.__main__, {package}.startup, uvicorn.server
print("\\n".join(
    module.__file__ for module in list(sys.modules.values())
    if getattr(module, "__file__", None) and module.__file__.endswith(".py")
    and not os.path.exists(importlib.util.cache_from_source(module.__file__))
))
"""


@pytest.mark.slow
def test_bench_installs_the_project_compiled_as_the_image_does(tmp_path: Path) -> None:
    """Its servers start from bytecode, as the image's do (UV_COMPILE_BYTECODE): where
    PYTHONDONTWRITEBYTECODE is set, each start would compile every module again,
    and start to ready would measure that (3.3 s rather than 1.6 s on 2 cores)."""
    env = with_tools() | {"PYTHONDONTWRITEBYTECODE": "1"}
    script = "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
    script += " from servers import render; print(render(Path(sys.argv[2])))"
    rendered = run([sys.executable, "-c", script, str(TEMPLATE / "bench"), str(tmp_path)], env=env)
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    project = Path(rendered.stdout.splitlines()[-1])
    python = project / "backend" / ".venv" / "bin" / "python"

    found = run([str(python), "-c", UNCOMPILED.format(package=package_of(project))], env=env)

    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "", found.stdout


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
        timeout=1200,  # six callgrind runs, two at a time, beside the rest of the suite
    )

    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    for server in ("rendered", "bare_fastapi", "baseline"):
        for endpoint in ("account", "transfer"):
            assert f"  {server:12} {endpoint:8} " in done.stdout, (server, endpoint, done.stdout)


# An extra loop at the start of the account read: far more than +5% of a read.
SLOWER_READ = "    for _ in range(5000):  # the test's injected cost\n        pass\n"
READ_CALL = "    account = await accounts.get_account(database, AccountId(account_id))\n"


@pytest.mark.slow
def test_rendered_gate_records_its_figures_then_fails_a_slower_route(
    installed_default: Path,
) -> None:
    """The rendered project's own gate: the first run records bench-gate.json (the
    default answers: a development token on every request); make bench-gate fails,
    before counting, while an endpoint has no figure; and a read made slower by a loop
    fails it, past +5%. The read alone is counted, twice (about 30 s a run: start-up
    and warm-up run uninstrumented)."""
    project = installed_default
    figures = project / "bench-gate.json"
    handler = project / "backend" / "src" / package_of(project) / "handlers" / "accounts.py"
    original = handler.read_text()
    assert READ_CALL in original
    python = str(project / "backend" / ".venv" / "bin" / "python")
    gate_the_read = [python, "scripts/bench_gate.py", "--endpoint", "account"]
    try:
        first = run(gate_the_read, project, with_tools(), timeout=900)
        assert first.returncode == 0, first.stdout + first.stderr[-3000:]
        assert "recorded bench-gate.json" in first.stdout
        recorded = json.loads(figures.read_text())["m_instructions_per_request"]
        assert list(recorded) == ["account"]
        assert recorded["account"] > 0, recorded

        unrecorded = run(["make", "bench-gate"], project, with_tools(), timeout=120)
        assert unrecorded.returncode != 0, unrecorded.stdout
        assert "bench-gate.json has no figure for transfer" in unrecorded.stderr

        handler.write_text(original.replace(READ_CALL, SLOWER_READ + READ_CALL))
        slower = run(gate_the_read, project, with_tools(), timeout=900)
        assert slower.returncode == 1, slower.stdout + slower.stderr[-3000:]
        (verdict,) = [line for line in slower.stdout.splitlines() if " -> " in line]
        assert verdict.startswith("  account "), slower.stdout
        assert "FAIL (over +5%)" in verdict, slower.stdout
        assert "make bench-gate-update" in slower.stdout
    finally:
        handler.write_text(original)
        figures.unlink(missing_ok=True)
        (project / "build" / "bench-gate.json").unlink(missing_ok=True)
