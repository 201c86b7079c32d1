"""The job worker on every target (background_worker=yes): the API's image with the
worker's command, a stop timeout above its grace period, its replicas x (pool + the
queue's connection) inside the connection budget; and the capacity rule counting it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode import cfn_yaml

from template_extensions import budget_for, worker_connections

from .support.deploy_files import by_kind, kustomize, named, production_settings
from .support.rendering import attempt, render

WORKER = ["python", "-m", "ledger_api.worker"]
ANSWERS = {"api_replicas": "3", "api_workers": "2", "db_pool_max_size": "4", "worker_replicas": "2",
           "worker_pool_max_size": "3"}  # fmt: skip


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cache: dict[str, Path] = {}

    def _rendered(cloud_target: str) -> Path:
        if cloud_target not in cache:
            output = tmp_path_factory.mktemp(cloud_target)
            cache[cloud_target] = render(
                output, {**ANSWERS, "cloud_target": cloud_target, "db_size": "small"}
            )
        return cache[cloud_target]

    return _rendered


def grace_seconds(project: Path) -> float:
    seconds: float = production_settings(project)["worker"]["graceful_shutdown_seconds"]
    return seconds


def test_compose_runs_the_worker_from_the_api_image(rendered: Any) -> None:
    project = rendered("none")
    services = yaml.safe_load((project / "docker-compose.yml").read_text())["services"]
    worker, api = services["worker"], services["api"]
    assert worker["image"] == api["image"]
    assert worker["command"] == WORKER
    assert worker["environment"]["APP_DATABASE__URL"] == api["environment"]["APP_DATABASE__URL"]
    assert worker["deploy"]["replicas"] == int(ANSWERS["worker_replicas"])
    assert worker["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert int(worker["stop_grace_period"].removesuffix("s")) > grace_seconds(project)


def test_kubernetes_worker_deployment_and_its_disruption_budget(rendered: Any) -> None:
    project = rendered("kubernetes")
    kinds = by_kind(kustomize(project / "deploy/kubernetes/overlays/production"))
    worker = named(kinds["Deployment"], "ledger-api-worker")
    api = named(kinds["Deployment"], "ledger-api")
    pod = worker["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == WORKER
    assert container["image"] == api["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container["envFrom"] == api["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert pod["terminationGracePeriodSeconds"] > grace_seconds(project)
    assert worker["spec"]["replicas"] == int(ANSWERS["worker_replicas"])
    # One pod added per step, the next after the stopped one is gone: the surge
    # capacity.yaml counts for kubernetes (2) holds for the worker too.
    rolling = worker["spec"]["strategy"]["rollingUpdate"]
    assert (rolling["maxSurge"], rolling["maxUnavailable"]) == (1, 0)
    assert worker["spec"]["minReadySeconds"] >= pod["terminationGracePeriodSeconds"]
    budget = named(kinds["PodDisruptionBudget"], "ledger-api-worker")
    assert budget["spec"]["selector"]["matchLabels"].items() <= (
        worker["spec"]["template"]["metadata"]["labels"].items()
    )
    # No Service sends traffic to the worker: it serves none.
    assert all(
        service["spec"]["selector"].get("app.kubernetes.io/component") != "worker"
        for service in kinds["Service"]
    )


def test_aws_worker_service_has_no_surge_and_drains(rendered: Any) -> None:
    project = rendered("aws")
    resources = cfn_yaml.loads((project / "deploy/aws/cloudformation.yaml").read_text())[
        "Resources"
    ]
    (container,) = resources["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert container["Command"] == WORKER
    assert container["StopTimeout"] > grace_seconds(project)
    assert "PortMappings" not in container
    service = resources["WorkerService"]["Properties"]
    assert service["DeploymentConfiguration"]["MaximumPercent"] == 100  # aws surge: 0
    assert service["DesiredCount"]["Fn::If"][1] == int(ANSWERS["worker_replicas"])
    assert "LoadBalancers" not in service


def test_azure_worker_container_app_has_no_ingress(rendered: Any) -> None:
    text = (rendered("azure") / "deploy/azure/main.bicep").read_text()
    worker = text[text.index("resource worker ") : text.index("resource migration ")]
    assert "command: [ 'python', '-m', 'ledger_api.worker' ]" in worker
    assert "ingress" not in worker
    replicas = ANSWERS["worker_replicas"]
    assert f"minReplicas: {replicas}" in worker
    assert f"maxReplicas: {replicas}" in worker


def test_render_background_worker(rendered: Any) -> None:
    project = rendered("render")
    blueprint = yaml.safe_load((project / "render.yaml").read_text())
    api, worker = blueprint["services"]
    assert worker["type"] == "worker"
    assert worker["dockerCommand"] == " ".join(WORKER)
    assert worker["dockerfilePath"] == api["dockerfilePath"]
    assert worker["numInstances"] == int(ANSWERS["worker_replicas"])
    assert worker["maxShutdownDelaySeconds"] > grace_seconds(project)


def test_vercel_guide_says_where_the_worker_runs(rendered: Any) -> None:
    guide = (rendered("vercel") / "DEPLOYMENT.md").read_text()
    assert "Vercel runs functions, not long-lived" in guide
    assert "python -m ledger_api.worker" in guide


def test_the_capacity_rule_counts_the_worker(tmp_path: Path) -> None:
    """An API that fits alone is refused once the worker's connections are added,
    with a line naming them; without the worker the same answers render."""
    budget = budget_for("none", "small")
    answers = {"cloud_target": "none", "db_size": "small", "api_replicas": "2",
               "api_workers": "2", "worker_replicas": "2", "worker_pool_max_size": "9"}  # fmt: skip
    worker = worker_connections(answers, budget)
    assert worker == 2 * (9 + 1)  # compose: no surge
    pool = budget.largest_pool(2, 2)  # fits without the worker, not with it
    argv = [f"{key}={value}" for key, value in answers.items()]
    refused = attempt(tmp_path / "with", *argv, f"db_pool_max_size={pool}")
    assert refused.returncode != 0
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
    assert f"+ {worker} background worker " in line
    fits = budget.largest_pool(2, 2, reserved_for_worker=worker)
    assert f"accepted: db_pool_max_size at most {fits}" in line
    accepted = attempt(
        tmp_path / "without", *argv, f"db_pool_max_size={pool}",
        "background_worker=no",
    )  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr


def test_the_suggested_pool_leaves_room_for_the_worker(tmp_path: Path) -> None:
    result = attempt(tmp_path, "cloud_target=render", "db_size=small")
    assert result.returncode == 0, result.stderr
    (project,) = tmp_path.iterdir()
    settings = yaml.safe_load((project / "backend/configuration/base.yaml").read_text())
    budget = budget_for("render", "small")
    peak = budget.peak_replicas(settings["database"]["budget"]["replicas"])
    api = peak * settings["server"]["workers"] * settings["database"]["pool"]["max_size"]
    worker = budget.peak_replicas(settings["worker"]["replicas"]) * (
        settings["worker"]["pool"]["max_size"] + 1
    )
    assert api + worker + budget.reserved + budget.headroom <= budget.max_connections
