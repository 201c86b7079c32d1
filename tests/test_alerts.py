"""The rendered alert rules (deploy/prometheus/alerts.yaml, every target): valid for
promtool, their own unit tests pass (alerts.test.yaml: each rule fires on a broken
threshold and stays silent on a healthy service), and their thresholds are the
rendered k6 script's."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .support.commands import run
from .support.k6 import latency_bounds_ms

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian's prometheus) is not installed"
)

ALERTS = Path("deploy/prometheus")
FAILED_RATE = re.compile(r"http_req_failed: \['rate<([0-9.]+)'\]")


def promtool(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return run(["promtool", *arguments], project / ALERTS, timeout=60)


def rules(project: Path) -> dict[str, str]:
    data = yaml.safe_load((project / ALERTS / "alerts.yaml").read_text())
    return {rule["alert"]: rule["expr"] for group in data["groups"] for rule in group["rules"]}


def test_alert_rules_pass_promtool_and_their_unit_tests(
    shipped: tuple[dict[str, str], Path],
) -> None:
    answers, project = shipped
    checked = promtool(project, "check", "rules", "alerts.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool(project, "test", "rules", "alerts.test.yaml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    expected = {
        "DatabasePoolSaturated",
        "RequestsShed",
        "RouteLatencyP99High",
        "DatabaseConnectionBudgetExceeded",
        "ReplicasNotReady",
    }
    if answers["cloud_target"] == "kubernetes":
        expected.add("DeploymentReplicasUnavailable")
    assert set(rules(project)) == expected


def test_alert_thresholds_are_the_load_tests(shipped: tuple[dict[str, str], Path]) -> None:
    _, project = shipped
    script = (project / "k6" / "load_test.js").read_text()
    _, p99_ms = latency_bounds_ms(project, "load")
    failed = FAILED_RATE.search(script)
    assert failed, "k6/load_test.js's failed-requests threshold moved"
    expressions = rules(project)
    assert expressions["RouteLatencyP99High"].rstrip().endswith(f"> {p99_ms / 1000}")
    assert expressions["RequestsShed"].rstrip().endswith(f"> {failed[1]}")
    assert expressions["DatabaseConnectionBudgetExceeded"].endswith(
        f'db_connection_budget_headroom{{job="{project.name}"}}) < 0'
    )
