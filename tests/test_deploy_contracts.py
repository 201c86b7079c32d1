"""Contract tests: what each target's deploy files must agree on with the service's
own settings and with the capacity data, beyond what the platforms' validators see.

Per target, from the rendered files and configuration/base.yaml + production.yaml:
- keep-alive: server.keep_alive_seconds > the idle timeout of the proxy in front;
- health: whatever restarts or replaces a container checks /health/live (never the
  database); readiness probes time out later than database.ready_timeout_seconds;
- budget: (autoscaler maximum + rollout surge) x workers x pool + reserved +
  headroom <= max_connections, with the surge derived from the files' own rollout
  settings; instance names and max_connections as capacity.yaml has them;
- shutdown: deregistration before SIGTERM, stop timeouts above
  server.graceful_shutdown_seconds, http.request_timeout_seconds below it;
- migrations once, before new code, as the owner, then the application role;
  the service connects as that role; secrets out of the files.
Rendered at db_size small (the tightest budget) and xlarge, offline.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode import cfn_yaml
from pycep import BicepParser

from template_extensions import Budget, budget_for, load_capacity

from .support.deploy_files import (
    by_kind,
    kustomize,
    named,
    overlay_with_pgbouncer,
    production_settings,
)
from .support.rendering import render

SIZES = ("small", "xlarge")
ANSWERS = {"api_replicas": "3", "api_workers": "2", "include_frontend": "yes"}
PACKAGE = "ledger_api"
APP_ROLE = f"{PACKAGE}_app"
MIGRATE = "alembic upgrade head && python scripts/app_role.py"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cache: dict[tuple[str, str], Path] = {}

    def _rendered(cloud_target: str, db_size: str) -> Path:
        if (cloud_target, db_size) not in cache:
            output = tmp_path_factory.mktemp(f"{cloud_target}-{db_size}")
            answers = {**ANSWERS, "cloud_target": cloud_target, "db_size": db_size}
            cache[(cloud_target, db_size)] = render(output, answers)
        return cache[(cloud_target, db_size)]

    return _rendered


def size_of(cloud_target: str, instance: str) -> str:
    """The db_size whose instance the file names (and so its max_connections)."""
    sizes = load_capacity()["targets"][cloud_target]["sizes"]
    sizes_named: list[str] = [
        name for name, entry in sizes.items() if entry["instance"] == instance
    ]
    (size,) = sizes_named
    return size


def assert_budget_holds(
    budget: Budget, settings: dict[str, Any], maximum: int, surge: int, pool: int
) -> None:
    workers = settings["server"]["workers"]
    needed = (maximum + surge) * workers * pool + budget.reserved + budget.headroom
    assert needed <= budget.max_connections, (
        f"({maximum} + {surge} surge) x {workers} x {pool} + {budget.reserved} + "
        f"{budget.headroom} = {needed} > max_connections {budget.max_connections}"
    )


def assert_service_timeouts(settings: dict[str, Any], proxy_idle: float, stop: float) -> None:
    server, http = settings["server"], settings["http"]
    assert server["keep_alive_seconds"] > proxy_idle, (
        f"keep-alive {server['keep_alive_seconds']} s <= proxy idle timeout {proxy_idle} s"
    )
    assert http["request_timeout_seconds"] < server["graceful_shutdown_seconds"] < stop


def ready_timeout(settings: dict[str, Any]) -> float:
    seconds: float = settings["database"]["ready_timeout_seconds"]
    return seconds


# --- AWS --------------------------------------------------------------------------


@pytest.mark.parametrize("db_size", SIZES)
def test_aws_contract(rendered: Any, db_size: str) -> None:
    project = rendered("aws", db_size)
    settings = production_settings(project)
    stack = cfn_yaml.loads((project / "deploy/aws/cloudformation.yaml").read_text())
    resources = stack["Resources"]
    props = {name: resource["Properties"] for name, resource in resources.items()}
    (api,) = props["ServiceTaskDefinition"]["ContainerDefinitions"]
    (migrate,) = props["MigrationTaskDefinition"]["ContainerDefinitions"]

    # Keep-alive above the ALB's idle timeout, as the stack sets it.
    attributes = {a["Key"]: a["Value"] for a in props["LoadBalancer"]["LoadBalancerAttributes"]}
    target_group = {a["Key"]: a["Value"] for a in props["TargetGroup"]["TargetGroupAttributes"]}
    assert_service_timeouts(
        settings, float(attributes["idle_timeout.timeout_seconds"]), api["StopTimeout"]
    )
    # ECS deregisters a stopping task and waits out the delay before SIGTERM.
    assert int(target_group["deregistration_delay.timeout_seconds"]) > 0

    # ECS replaces tasks its target group finds unhealthy: that check is liveness.
    assert props["TargetGroup"]["HealthCheckPath"] == "/health/live"
    # The target group's is the only check that replaces tasks: the container has none.
    assert "HealthCheck" not in api

    # The budget at MaxCapacity + what MaximumPercent lets a deploy add.
    instance = props["Database"]["DBInstanceClass"]
    budget = budget_for("aws", size_of("aws", instance))
    assert instance == budget_for("aws", db_size).instance
    assert re.search(rf"\b{budget.max_connections}\b", stack["Description"])
    maximum = props["ScalableTarget"]["MaxCapacity"]
    surge = math.ceil(
        maximum * (props["Service"]["DeploymentConfiguration"]["MaximumPercent"] - 100) / 100
    )
    environment = {e["Name"]: e.get("Value") for e in api["Environment"]}
    pool = int(environment["APP_DATABASE__POOL__MAX_SIZE"])
    assert pool == settings["database"]["pool"]["max_size"]
    assert_budget_holds(budget, settings, maximum, surge, pool)

    # Migrations: once, by the task run before the service gets traffic; the first
    # deploy runs no service task until the migration ran.
    assert "Command" not in api
    assert migrate["Command"] == ["sh", "-c", MIGRATE]
    desired = props["Service"]["DesiredCount"]
    assert isinstance(desired, dict), f"DesiredCount {desired}: tasks start before any migration"
    # Running, the count is autoscaling's alone: a stack update that names one (every
    # release changes the task definition) resets the service to it, at peak load too.
    # Registering the scalable target lifts the first deploy's 0 to MinCapacity.
    assert desired == {"Fn::If": ["Running", {"Ref": "AWS::NoValue"}, 0]}
    assert stack["Parameters"]["ServiceRunning"]["Default"] == "false"
    assert resources["ScalableTarget"]["Condition"] == "Running"

    # The application role, its password from a secret ECS reads at task start.
    api_url = environment["APP_DATABASE__URL"]["Fn::Sub"]
    assert api_url.startswith(f"postgresql://{APP_ROLE}@")
    assert api["Secrets"] == [
        {"Name": "PGPASSWORD", "ValueFrom": {"Fn::Sub": "${AppDatabaseCredentials}:password::"}}
    ]
    migrate_secrets = {s["Name"]: s["ValueFrom"]["Fn::Sub"] for s in migrate["Secrets"]}
    assert migrate_secrets == {
        "PGPASSWORD": "${DatabaseCredentials}:password::",
        "APP_ROLE_PASSWORD": "${AppDatabaseCredentials}:password::",
    }
    # DEPLOYMENT.md: the first deploy, the pool variable its scaling step names, rotation.
    guide = (project / "DEPLOYMENT.md").read_text()
    assert "`ServiceRunning=true`" in guide
    scaling = guide[guide.index("**Scaling.**") : guide.index("**Rotation.**")]
    named_pools = set(re.findall(r"APP_DATABASE__POOL__\w+", scaling))
    assert named_pools
    assert named_pools <= environment.keys(), named_pools - environment.keys()
    # Rotation as these files allow it: the task's URL names the role, so a strategy
    # that switches the secret to a clone user (alternating users) cannot work, and
    # the master's password changes in RDS as well as in its secret.
    rotation = guide[guide.index("**Rotation.**") : guide.index("**Rollback.**")]
    assert "alternating-users" not in rotation
    assert "--master-user-password" in rotation
    for container in (api, migrate):
        assert "RepositoryCredentials" in container
        for entry in container["Environment"]:
            assert "password" not in str(entry.get("Value", "")).lower(), entry


# --- Azure ------------------------------------------------------------------------


@pytest.mark.parametrize("db_size", SIZES)
def test_azure_contract(rendered: Any, db_size: str) -> None:
    project = rendered("azure", db_size)
    settings = production_settings(project)
    text = (project / "deploy/azure/main.bicep").read_text()
    bicep = BicepParser().parse(text=text)
    resources: dict[str, Any] = {name: e["config"] for name, e in bicep["resources"].items()}
    variables: dict[str, Any] = {name: e["value"] for name, e in bicep["variables"].items()}
    app = resources["app"]["properties"]
    (api,) = app["template"]["containers"]
    probes = {probe["type"]: probe for probe in api["probes"]}

    budget = budget_for("azure", size_of("azure", resources["database"]["sku"]["name"]))
    assert resources["database"]["sku"]["name"] == budget_for("azure", db_size).instance
    assert f"max_connections {budget.max_connections}" in text
    assert_service_timeouts(
        settings, budget.proxy_idle_timeout_seconds, variables["terminationGracePeriodSeconds"]
    )

    # Restarts on liveness only; readiness waits longer than the service's own check.
    assert probes["Liveness"]["httpGet"]["path"] == "/health/live"
    assert probes["Startup"]["httpGet"]["path"] == "/health/live"
    assert probes["Readiness"]["httpGet"]["path"] == "/health/ready"
    assert probes["Readiness"]["timeoutSeconds"] > ready_timeout(settings)

    # A single-revision deploy starts the new revision beside the old, up to the maximum.
    maximum = app["template"]["scale"]["maxReplicas"]
    assert app["configuration"]["activeRevisionsMode"] == "Single"
    assert_budget_holds(
        budget, settings, maximum, maximum, settings["database"]["pool"]["max_size"]
    )

    # Private access only; passwords in Key Vault, read through references.
    assert not [r for r in bicep["resources"].values() if "firewallRules" in r["type"]]
    assert "0.0.0.0" not in text
    assert resources["database"]["properties"]["network"]["publicNetworkAccess"] == "Disabled"
    vault_secrets = variables["vaultSecrets"]
    assert {secret["name"] for secret in vault_secrets} == {
        "app-database-password",
        "owner-database-password",
    }
    assert all("keyVaultUrl" in secret and "value" not in secret for secret in vault_secrets)
    assert "registries" in app["configuration"]

    # The app as the application role; the job migrates as the owner, then the role.
    environment = {e["name"]: e for e in variables["environmentVariables"]}
    assert environment["APP_DATABASE__URL"]["value"].startswith("postgresql://${appRole}@")
    assert variables["appRole"] == APP_ROLE
    assert environment["PGPASSWORD"]["secretRef"] == "app-database-password"
    assert "command" not in api
    (migrate,) = resources["migration"]["properties"]["template"]["containers"]
    assert migrate["command"] == ["sh", "-c", MIGRATE]
    # DEPLOYMENT.md: images change only through the Bicep (the CLI's are reverted by
    # the next deployment); the SIGTERM-to-removal gap without preStop is explained.
    guide = (project / "DEPLOYMENT.md").read_text()
    assert not re.search(r"az containerapp (job )?update -g[^\n]*--image", guide)
    assert "no preStop hook" in guide
    assert "**Rotation.**" in guide
    job_environment = {e["name"]: e for e in variables["migrationVariables"]}
    assert job_environment["PGPASSWORD"]["secretRef"] == "owner-database-password"
    assert job_environment["APP_ROLE_PASSWORD"]["secretRef"] == "app-database-password"


# --- Render -----------------------------------------------------------------------


@pytest.mark.parametrize("db_size", SIZES)
def test_render_contract(rendered: Any, db_size: str) -> None:
    project = rendered("render", db_size)
    settings = production_settings(project)
    blueprint = yaml.safe_load((project / "render.yaml").read_text())
    service = blueprint["services"][0]  # the API; [1] is the job worker
    (database,) = blueprint["databases"]

    budget = budget_for("render", size_of("render", database["plan"]))
    assert database["plan"] == budget_for("render", db_size).instance
    assert_service_timeouts(
        settings, budget.proxy_idle_timeout_seconds, service["maxShutdownDelaySeconds"]
    )
    # Render restarts an instance whose health check fails: liveness.
    assert service["healthCheckPath"] == "/health/live"
    # Render starts every new instance before stopping an old one.
    maximum = service["scaling"]["maxInstances"]
    assert_budget_holds(
        budget, settings, maximum, maximum, settings["database"]["pool"]["max_size"]
    )
    assert service["preDeployCommand"] == "alembic upgrade head"
    assert "startCommand" not in service
    urls = [e for e in service["envVars"] if e.get("key") == "APP_DATABASE__URL"]
    assert urls == [
        {
            "key": "APP_DATABASE__URL",
            "fromDatabase": {"name": database["name"], "property": "connectionString"},
        }
    ]


# --- Kubernetes -------------------------------------------------------------------


def assert_steps_outlast_drain(deployment: dict[str, Any]) -> None:
    """A rollout step starts only after the pods the previous step stopped are gone
    (the controller does not count terminating pods), so one step's worth drain at once."""
    spec = deployment["spec"]
    grace = spec["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    name = deployment["metadata"]["name"]
    assert spec.get("minReadySeconds", 0) >= grace, f"{name}: a rollout step may start mid-drain"


def kubernetes_surge(deployment: dict[str, Any]) -> int:
    """Pods beyond `replicas` that hold pools during a rollout: maxSurge, plus one
    still draining, provided minReadySeconds outlasts the drain (else more)."""
    assert_steps_outlast_drain(deployment)
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    return int(rolling["maxSurge"]) + int(rolling["maxUnavailable"]) + 1


@pytest.mark.parametrize("db_size", SIZES)
def test_kubernetes_contract(rendered: Any, db_size: str) -> None:
    project = rendered("kubernetes", db_size)
    settings = production_settings(project)
    documents = kustomize(project / "deploy/kubernetes/overlays/production")
    kinds = by_kind(documents)
    deployment = named(kinds["Deployment"], "ledger-api")
    pod = deployment["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    (config,) = kinds["ConfigMap"]
    budget = budget_for("kubernetes", db_size)

    prestop = api["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert prestop > 0, "endpoints must be removed before SIGTERM"
    assert_service_timeouts(
        settings,
        budget.proxy_idle_timeout_seconds,
        pod["terminationGracePeriodSeconds"] - prestop,
    )
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert api["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["readinessProbe"].get("timeoutSeconds", 1) > ready_timeout(settings)

    # A single replica (staging) must roll without downtime.
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    maximum = kinds["HorizontalPodAutoscaler"][0]["spec"]["maxReplicas"]
    pool = int(config["data"]["APP_DATABASE__POOL__MAX_SIZE"])
    assert_budget_holds(budget, settings, maximum, kubernetes_surge(deployment), pool)
    assert f"`max_connections` {budget.max_connections})" in (project / "DEPLOYMENT.md").read_text()

    # Migrations by the Job alone, as the owner from a Secret the API never reads.
    (job,) = kinds["Job"]
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["sh", "-c", MIGRATE]
    assert "command" not in api
    assert "args" not in api
    api_secret = named(kinds["Secret"], "ledger-api-database")["metadata"]["name"]
    migration_secret = named(kinds["Secret"], "ledger-api-migration")["metadata"]["name"]
    assert {"secretRef": {"name": api_secret}} in api["envFrom"]
    assert {"secretRef": {"name": migration_secret}} in migrate["envFrom"]
    assert migration_secret not in str(api)
    for spec in (pod, job["spec"]["template"]["spec"]):
        assert spec["imagePullSecrets"] == [{"name": "ledger-api-registry"}]
    # One copy of the application role's password, in the API's Secret: the Job
    # sets the role's password from it, so the two cannot drift apart.
    database_secret = named(kinds["Secret"], "ledger-api-database")
    assert "PGPASSWORD" in database_secret["data"]
    job_environment = {e["name"]: e.get("valueFrom") for e in migrate.get("env", [])}
    assert job_environment.get("APP_ROLE_PASSWORD") == {
        "secretKeyRef": {"name": api_secret, "key": "PGPASSWORD"}
    }
    assert "APP_ROLE_PASSWORD" not in named(kinds["Secret"], "ledger-api-migration")["data"]
    example = (project / "deploy/kubernetes/overlays/production/secrets.env.example").read_text()
    assert f"postgresql://{APP_ROLE}@" in example
    # DEPLOYMENT.md claims PGSSLMODE only where the files set it.
    guide = (project / "DEPLOYMENT.md").read_text()
    assert "PGSSLMODE" not in str(documents)
    assert "These files set no `PGSSLMODE`" in guide
    claims = (
        r"files (here )?(set|ask for TLS with) `PGSSLMODE|`PGSSLMODE=require` in the deploy files"
    )
    assert not re.search(claims, guide)
    assert "**Rotation.**" in guide


def test_kubernetes_metrics_listener_is_scraped_not_served(rendered: Any) -> None:
    """The pod declares the metrics listener for the scraper; the public Service
    (the API's port only) does not reach it."""
    project = rendered("kubernetes", "small")
    settings = production_settings(project)
    kinds = by_kind(kustomize(project / "deploy/kubernetes/overlays/production"))
    deployment = named(kinds["Deployment"], "ledger-api")
    (api,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in api["ports"]}
    assert ports["metrics"] == settings["metrics"]["port"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings["metrics"]["port"])
    (service,) = kinds["Service"]
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]


@pytest.mark.parametrize("db_size", SIZES)
def test_kubernetes_pgbouncer_contract(rendered: Any, db_size: str) -> None:
    project = rendered("kubernetes", db_size)
    settings = production_settings(project)
    kinds = by_kind(kustomize(overlay_with_pgbouncer(project)))
    budget = budget_for("kubernetes", db_size)
    api = named(kinds["Deployment"], "ledger-api")
    pgbouncer = named(kinds["Deployment"], "ledger-api-pgbouncer")
    (container,) = pgbouncer["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    config = kinds["ConfigMap"][0]["data"]

    assert env["POOL_MODE"]["value"] == "transaction"
    # Prepared statements: the service caches none (the pooler's are not configured).
    assert config["APP_DATABASE__POOL__STATEMENT_CACHE_SIZE"] == "0"
    assert "MAX_PREPARED_STATEMENTS" not in env

    # Every API pool at the HPA's maximum plus the rollout surge gets a client slot.
    maximum = kinds["HorizontalPodAutoscaler"][0]["spec"]["maxReplicas"]
    peak = maximum + kubernetes_surge(api)
    clients = peak * settings["server"]["workers"] * int(config["APP_DATABASE__POOL__MAX_SIZE"])
    assert int(env["MAX_CLIENT_CONN"]["value"]) >= clients
    # DEPLOYMENT.md says how to raise it with maxReplicas, by the same surge.
    guide = (project / "DEPLOYMENT.md").read_text()
    (surge_named,) = re.findall(r"\(`maxReplicas` \+ (\d+)\) ×", guide)
    assert int(surge_named) == kubernetes_surge(api)

    # Server connections: every pooler, and one more a pooler rollout may overlap,
    # within what the budget leaves. PgBouncer >= 1.23 keeps serving its clients
    # after SIGTERM until they leave (pools never do: the grace period ends it).
    assert_steps_outlast_drain(pgbouncer)
    replicas = pgbouncer["spec"]["replicas"]
    rolling = pgbouncer["spec"]["strategy"]["rollingUpdate"]
    poolers = replicas + int(rolling["maxSurge"]) + int(rolling["maxUnavailable"])
    server_pool = int(env["DEFAULT_POOL_SIZE"]["value"])
    assert int(env["MAX_DB_CONNECTIONS"]["value"]) == server_pool
    assert poolers * server_pool + budget.reserved + budget.headroom <= budget.max_connections

    # The upstream as parts (a URL's ?sslmode= would become part of the database
    # name), TLS to the server, and availability through node drains.
    assert "DATABASE_URL" not in env
    assert env["DB_NAME"]["value"] == PACKAGE
    assert env["DB_USER"]["value"] == APP_ROLE
    api_secret = named(kinds["Secret"], "ledger-api-database")["metadata"]["name"]
    assert env["DB_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": api_secret, "key": "PGPASSWORD"}
    }
    assert env["SERVER_TLS_SSLMODE"]["value"] in {"require", "verify-ca", "verify-full"}
    assert replicas >= 2
    assert named(kinds["PodDisruptionBudget"], "ledger-api-pgbouncer")["spec"]["minAvailable"] >= 1


def test_kubernetes_staging_rolls_without_downtime(rendered: Any) -> None:
    kinds = by_kind(
        kustomize(rendered("kubernetes", "small") / "deploy/kubernetes/overlays/staging")
    )
    deployment = named(kinds["Deployment"], "ledger-api")
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert deployment["spec"]["replicas"] - int(rolling["maxUnavailable"]) >= 1


# --- Vercel and compose -----------------------------------------------------------


@pytest.mark.parametrize("cloud_target", ["vercel", "none"])
def test_container_elsewhere_contract(rendered: Any, cloud_target: str) -> None:
    """No deploy files of our own: the settings and the budget table still hold."""
    project = rendered(cloud_target, "small")
    settings = production_settings(project)
    budget = budget_for(cloud_target, "small")
    assert_service_timeouts(settings, budget.proxy_idle_timeout_seconds, math.inf)
    replicas = int(ANSWERS["api_replicas"])
    pool = settings["database"]["pool"]["max_size"]
    assert_budget_holds(budget, settings, replicas, budget.surge(replicas), pool)
    # The Vercel function path is gone: it had no maximum the budget could count.
    assert not (project / "backend/app.py").exists()
    table = (project / "DEPLOYMENT.md").read_text()
    assert re.search(rf"\+ {budget.surge(replicas)} rollout surge\)", table)
