"""A real k6 run against a rendered service on PostgreSQL: the project's own
`make load` holds the service to its thresholds and writes its summary and report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .support.k6 import k6_summary, make_load
from .support.service import serve_rendered

LOAD_VARIANTS = [
    pytest.param({}, id="defaults"),
    pytest.param({"example_domain": "none", "include_frontend": "no"}, id="skeleton"),
]


@pytest.fixture(scope="module", params=LOAD_VARIANTS)
def served(
    request: pytest.FixtureRequest, cookies_session: Any
) -> Iterator[tuple[dict[str, str], Path, str]]:
    with serve_rendered(cookies_session, request.param) as served_project:
        yield served_project


@pytest.mark.slow
@pytest.mark.xdist_group("k6")
def test_k6_smoke_passes_its_thresholds(served: tuple[dict[str, str], Path, str]) -> None:
    answers, project, base_url = served
    result = make_load(project, base_url, "SCENARIO=smoke", "LOAD_DURATION=8s")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = k6_summary(project, "smoke")
    thresholds = {
        f"{name} {expression}": outcome["ok"]
        for name, metric in summary["metrics"].items()
        for expression, outcome in metric.get("thresholds", {}).items()
    }
    assert len(thresholds) == 4, thresholds
    assert all(thresholds.values()), thresholds
    checks = {check["name"]: check for check in summary["root_group"]["checks"]}
    assert all(check["fails"] == 0 for check in checks.values()), checks
    exercised = {"live: 200", "ready: 200"}
    if answers["example_domain"] == "ledger":
        exercised |= {
            "create account: 201",
            "create account: Location",
            "read account: 200 with its id",
            "list accounts: 200 with items",
            "transfer: 201",
            "read transfer: 200",
        }
    assert {name for name, check in checks.items() if check["passes"] > 0} == exercised


@pytest.mark.slow
@pytest.mark.xdist_group("k6")
def test_make_load_writes_json_summary_and_html_report(
    served: tuple[dict[str, str], Path, str],
) -> None:
    _, project, base_url = served
    result = make_load(project, base_url, "LOAD_DURATION=5s")
    # 99 is k6's "a threshold failed": the reports are written either way, and the
    # smoke test above is the one that holds the service to its thresholds.
    assert result.returncode in (0, 99), result.stdout + result.stderr
    summary = k6_summary(project, "load")
    assert summary["metrics"]["http_reqs"]["values"]["count"] > 0
    assert "p(99)" in summary["metrics"]["http_req_duration"]["values"]
    report = (project / "k6" / "results" / "load-report.html").read_text()
    # k6's dashboard report: one self-contained page with the run's data embedded.
    assert report.rstrip().endswith("</html>")
    assert '<script id="data"' in report
