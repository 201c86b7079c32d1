"""What ships with every rendered variant passes its real validator: hadolint on the
Dockerfile, the compose-spec schema, actionlint, yamllint, `k6 inspect`; and the
pieces agree with each other and with the service's own configuration."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import asyncpg
import pytest
import yaml
from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser

from template_extensions import db_budget

from . import identity_provider
from .conftest import TEMPLATE
from .harness import free_port
from .variants import SUPPORTED

BIN = Path(sys.executable).parent
HEALTHCHECK_URL = re.compile(r"http://127\.0\.0\.1:(\d+)(/[\w/]+)")
# Compose's `${NAME:-default}` interpolation, the only form the compose file uses.
COMPOSE_DEFAULT = re.compile(r"\$\{\w+:-([^}]*)\}")
# Compose's `${NAME:?message}`: no value, no start.
REQUIRED_VARIABLE = re.compile(r"\$\{(\w+):\?[^}]+\}")
SERVER_OVERRIDES = ("APP_SERVER__PORT", "APP_SERVER__WORKERS")


def run(
    command: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, check=False, env=env, timeout=300
    )


def compose(project: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((project / "docker-compose.yml").read_text())
    return data


def dockerfile(project: Path) -> DockerfileParser:
    return DockerfileParser(path=str(project / "backend" / "Dockerfile"))


def instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [entry["value"] for entry in parser.structure if entry["instruction"] == name]


def final_stage(parser: DockerfileParser) -> list[dict[str, Any]]:
    structure: list[dict[str, Any]] = parser.structure
    starts = [i for i, entry in enumerate(structure) if entry["instruction"] == "FROM"]
    return structure[starts[-1] :]


def healthcheck_url(text: str) -> tuple[int, str]:
    match = HEALTHCHECK_URL.search(text)
    assert match, f"no http://127.0.0.1:<port>/<path> in {text!r}"
    return int(match[1]), match[2]


def effective_server_settings(project: Path, overrides: dict[str, str]) -> dict[str, Any]:
    """The server settings and routes the service itself computes in production,
    with the image's and compose's APP_SERVER__* overrides applied."""
    probe = (
        "import json\n"
        "from {package}.configuration import load_settings\n"
        "from {package}.startup import create_app\n"
        "settings = load_settings()\n"
        "paths = sorted(create_app(settings).openapi()['paths'])\n"
        "print(json.dumps({{**settings.server.model_dump(), 'paths': paths}}))\n"
    ).format(package=next((project / "backend" / "src").iterdir()).name)
    env = (
        os.environ
        | overrides
        | {
            "PYTHONPATH": str(project / "backend" / "src"),
            "APP_ENVIRONMENT": "production",
            "APP_CONFIG_DIR": str(project / "backend" / "configuration"),
            "APP_DATABASE__URL": "postgresql://probe@127.0.0.1:5432/probe",
        }
    )
    result = run([sys.executable, "-c", probe], project, env)
    assert result.returncode == 0, result.stderr
    settings: dict[str, Any] = json.loads(result.stdout)
    return settings


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, f"unexpected duration {duration!r}"
    return int(match[1]) * (60 if match[2] == "m" else 1)


def test_dockerfile_has_no_hadolint_findings(shipped: tuple[dict[str, str], Path]) -> None:
    _, project = shipped
    result = run([str(BIN / "hadolint"), "backend/Dockerfile"], project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_multi_stage_slim_and_non_root(shipped: tuple[dict[str, str], Path]) -> None:
    answers, project = shipped
    parser = dockerfile(project)
    slim = f"python:{answers['python_version']}-slim-trixie"
    assert parser.parent_images == [slim, slim], "builder and runtime on the answered Python"
    runtime = final_stage(parser)
    (user,) = [entry["value"] for entry in runtime if entry["instruction"] == "USER"]
    assert user.split(":")[0] not in {"0", "root"}
    copies = [entry["value"] for entry in runtime if entry["instruction"] == "COPY"]
    assert not any(value.startswith("src") for value in copies), "the runtime copies no source"
    assert "--from=builder /opt/venv /opt/venv" in copies
    assert parser.envs["APP_ENVIRONMENT"] == "production"
    (command,) = instructions(parser, "CMD")
    assert json.loads(command) == ["python", "-m", answers["package_name"]]


def test_migrations_never_run_in_the_api_entrypoint(shipped: tuple[dict[str, str], Path]) -> None:
    _, project = shipped
    parser = dockerfile(project)
    for instruction in ("CMD", "ENTRYPOINT"):
        assert not any("alembic" in value for value in instructions(parser, instruction))
    services = compose(project)["services"]
    api = services["api"]
    assert "alembic" not in json.dumps([api.get("command"), api.get("entrypoint")])
    # The migration, then the API role's grants (backend/scripts/app_role.py), as the owner.
    assert services["migrate"]["command"] == [
        "sh",
        "-c",
        "alembic upgrade head && python scripts/app_role.py",
    ]
    assert api["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert api["depends_on"]["db"] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"]["db"] == {"condition": "service_healthy"}


def test_compose_matches_the_compose_spec(shipped: tuple[dict[str, str], Path]) -> None:
    _, project = shipped
    result = run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            "docker-compose.yml",
        ],
        project,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_database_fits_the_connection_budget(
    shipped: tuple[dict[str, str], Path],
) -> None:
    answers, project = shipped
    services = compose(project)["services"]
    budget = db_budget(answers)
    db = services["db"]
    assert f"max_connections={budget.max_connections}" in db["command"]
    assert "image" in db, "no PostgreSQL image"
    assert re.search(r":\d+\.\d+", db["image"]), "pinned PostgreSQL version"
    assert "healthcheck" in db
    pool = yaml.safe_load((project / "backend/configuration/base.yaml").read_text())["database"]
    used = (
        int(answers["api_replicas"]) * int(answers["api_workers"]) * pool["pool"]["max_size"]
        + budget.reserved
        + budget.headroom
    )
    assert used <= budget.max_connections


def test_compose_api_reaches_the_compose_database(shipped: tuple[dict[str, str], Path]) -> None:
    """The migration connects as the database's owner, the API as its own role; every
    password comes from .env, and compose refuses to start without one (`${NAME:?}`)."""
    answers, project = shipped
    services = compose(project)["services"]

    def named(value: str) -> str:
        """The value with each `${NAME:?message}` replaced by NAME."""
        return REQUIRED_VARIABLE.sub(r"\1", value)

    db_env = services["db"]["environment"]
    migrate_env = services["migrate"]["environment"]
    owner = urlsplit(named(migrate_env["APP_DATABASE__URL"]))
    api = urlsplit(named(services["api"]["environment"]["APP_DATABASE__URL"]))
    for url in (owner, api):
        assert (url.hostname, url.port) == ("db", 5432)
        assert url.path == f"/{db_env['POSTGRES_DB']}"
    assert owner.username == db_env["POSTGRES_USER"]
    assert api.username == f"{answers['package_name']}_app"
    assert named(db_env["POSTGRES_PASSWORD"]) == owner.password == "POSTGRES_PASSWORD"
    assert named(migrate_env["APP_ROLE_PASSWORD"]) == api.password == "APP_ROLE_PASSWORD"
    assert "local-only" not in (project / "docker-compose.yml").read_text()


def interpolated_url(value: str) -> SplitResult:
    """A compose URL with its `${VARIABLE:?message}` parts (passwords) filled in."""
    return urlsplit(re.sub(r"\$\{[^}]*\}", "secret", value))


def test_compose_pgbouncer_profile_fronts_the_database_in_transaction_mode(
    shipped: tuple[dict[str, str], Path],
) -> None:
    """`docker compose --profile pgbouncer`: an API behind PgBouncer, sized by the budget."""
    answers, project = shipped
    services = compose(project)["services"]
    bouncer, api = services["pgbouncer"], services["api-pgbouncer"]
    assert bouncer["profiles"] == api["profiles"] == ["pgbouncer"]
    assert bouncer["environment"]["POOL_MODE"] == "transaction"
    upstream = bouncer["environment"]["DATABASE_URL"]
    assert upstream == services["api"]["environment"]["APP_DATABASE__URL"]
    through = interpolated_url(api["environment"]["APP_DATABASE__URL"])
    assert (through.hostname, through.port) == ("pgbouncer", 5432)
    assert (through.username, through.path) == (
        interpolated_url(upstream).username,
        interpolated_url(upstream).path,
    )
    assert api["environment"]["APP_DATABASE__POOL__STATEMENT_CACHE_SIZE"] == "0"
    pool = yaml.safe_load((project / "backend/configuration/base.yaml").read_text())["database"]
    clients = int(answers["api_workers"]) * pool["pool"]["max_size"]
    budget = db_budget(answers)
    servers = budget.max_connections - budget.reserved - budget.headroom
    assert int(bouncer["environment"]["MAX_CLIENT_CONN"]) == clients
    assert int(bouncer["environment"]["DEFAULT_POOL_SIZE"]) == servers


def test_make_env_writes_missing_passwords_only_readable_by_the_owner(
    shipped: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    """`make .env` on a fresh project, then on a .env from before APP_ROLE_PASSWORD
    existed: the missing password is added, the value already there is kept."""
    _, project = shipped
    (tmp_path / "scripts").mkdir()
    for name in ("Makefile", "scripts/local_env.py"):
        (tmp_path / name).write_text((project / name).read_text())
    env_file = tmp_path / ".env"
    made = run(["make", ".env"], tmp_path)
    assert made.returncode == 0, made.stderr
    assert env_file.stat().st_mode & 0o777 == 0o600
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    assert set(values) == {"POSTGRES_PASSWORD", "APP_ROLE_PASSWORD"}
    env_file.write_text("POSTGRES_PASSWORD=kept")
    again = run(["make", ".env"], tmp_path)
    assert again.returncode == 0, again.stderr
    lines = env_file.read_text().splitlines()
    assert lines[0] == "POSTGRES_PASSWORD=kept"
    assert [line.split("=", 1)[0] for line in lines[1:]] == ["APP_ROLE_PASSWORD"]


def test_frontend_is_served_only_when_included(shipped: tuple[dict[str, str], Path]) -> None:
    answers, project = shipped
    services = compose(project)["services"]
    assert ("frontend" in services) == (answers["include_frontend"] == "yes")
    if "frontend" in services:
        assert re.search(r":\d+\.\d+", services["frontend"]["image"]), "pinned nginx version"
        assert services["frontend"]["volumes"][0].startswith("./frontend/public:")


def test_port_health_path_and_workers_agree(shipped: tuple[dict[str, str], Path]) -> None:
    answers, project = shipped
    parser = dockerfile(project)
    api = compose(project)["services"]["api"]
    overrides = {
        key: str(value)
        for key, value in (parser.envs | api["environment"]).items()
        if key in SERVER_OVERRIDES
    }
    server = effective_server_settings(project, overrides)

    (exposed,) = instructions(parser, "EXPOSE")
    (docker_health,) = instructions(parser, "HEALTHCHECK")
    docker_port, docker_path = healthcheck_url(docker_health)
    compose_port, compose_path = healthcheck_url(" ".join(api["healthcheck"]["test"]))
    published = {int(mapping.rsplit(":", 1)[1]) for mapping in api["ports"]}

    assert {int(exposed), docker_port, compose_port} | published == {server["port"]}
    assert docker_path == compose_path == "/health/live"
    assert docker_path in server["paths"]
    assert server["workers"] == int(answers["api_workers"])
    assert seconds(api["stop_grace_period"]) > server["graceful_shutdown_seconds"]


def test_every_copy_source_is_in_the_build_context(shipped: tuple[dict[str, str], Path]) -> None:
    _, project = shipped
    # uv.lock comes from the project's own lock step (the post-generation install
    # runs it; these renders skip that step to stay fast).
    lock = run(["make", "lock"], project, os.environ | {"PATH": f"{BIN}:{os.environ['PATH']}"})
    assert lock.returncode == 0, lock.stdout + lock.stderr
    context = project / compose(project)["services"]["api"]["build"]["context"]
    assert (context / "Dockerfile").resolve() == (project / "backend" / "Dockerfile").resolve()
    ignore = [
        line
        for line in (context / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    included = set(exclude_paths(str(context), ignore))
    for value in instructions(dockerfile(project), "COPY"):
        words = json.loads(value) if value.startswith("[") else shlex.split(value)
        if any(word.startswith("--from=") for word in words):
            continue
        for source in (word for word in words[:-1] if not word.startswith("--")):
            path = context / source
            assert path.exists(), f"COPY {source}: not in the build context {context}"
            files = (
                [path]
                if path.is_file()
                else [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            )
            assert files, f"COPY {source}: empty"
            for file in files:
                assert str(file.relative_to(context)) in included, f"{file} is .dockerignored"


def test_workflows_pass_actionlint(shipped: tuple[dict[str, str], Path]) -> None:
    answers, project = shipped
    workflows = sorted(str(path) for path in (project / ".github" / "workflows").glob("*.yml"))
    assert workflows
    result = run(
        [str(BIN / "actionlint"), "-shellcheck", str(BIN / "shellcheck"), *workflows], project
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ci = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    assert ci["env"]["PYTHON_VERSION"] == answers["python_version"]


def test_yaml_passes_yamllint(shipped: tuple[dict[str, str], Path]) -> None:
    _, project = shipped
    result = run([str(BIN / "yamllint"), "--strict", "-c", ".yamllint.yml", "."], project)
    assert result.returncode == 0, result.stdout + result.stderr


def k6_inspect(project: Path, scenario: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"K6_NO_USAGE_REPORT": "true"}
    return run(
        [str(BIN / "k6"), "inspect", "-e", f"SCENARIO={scenario}", "k6/load_test.js"], project, env
    )


def test_k6_script_compiles_with_thresholds(shipped: tuple[dict[str, str], Path]) -> None:
    _, project = shipped
    executors = {
        "smoke": "constant-arrival-rate",
        "load": "constant-arrival-rate",
        "spike": "ramping-arrival-rate",
    }
    for scenario, executor in executors.items():
        result = k6_inspect(project, scenario)
        assert result.returncode == 0, result.stdout + result.stderr
        options = json.loads(result.stdout)
        assert options["scenarios"][scenario]["executor"] == executor
        assert set(options["thresholds"]) == {"http_req_failed", "http_req_duration", "checks"}
        latency = " ".join(options["thresholds"]["http_req_duration"])
        assert "p(95)<" in latency
        assert "p(99)<" in latency
        assert "p(99)" in options["summaryTrendStats"]


def test_k6_names_an_unknown_scenario(shipped: tuple[dict[str, str], Path]) -> None:
    _, project = shipped
    result = k6_inspect(project, "soak")
    assert result.returncode != 0
    assert "SCENARIO=soak: not a scenario; accepted: smoke, load, spike" in result.stderr


def test_k6_mix_exercises_the_ledger_only_when_present(
    shipped: tuple[dict[str, str], Path],
) -> None:
    answers, project = shipped
    script = (project / "k6" / "load_test.js").read_text()
    ledger_calls = ("/v1/accounts", "/v1/transfers", "Idempotency-Key")
    for call in ledger_calls:
        assert (call in script) == (answers["example_domain"] == "ledger"), call


def test_template_workflows_pass_actionlint_and_yamllint() -> None:
    workflows = sorted(str(path) for path in (TEMPLATE / ".github" / "workflows").glob("*.yml"))
    assert workflows
    lint = run(
        [str(BIN / "actionlint"), "-shellcheck", str(BIN / "shellcheck"), *workflows], TEMPLATE
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    yamllint = run([str(BIN / "yamllint"), "--strict", "-c", ".yamllint.yml", "."], TEMPLATE)
    assert yamllint.returncode == 0, yamllint.stdout + yamllint.stderr


def test_template_scripts_pass_shellcheck() -> None:
    scripts = sorted(str(path) for path in (TEMPLATE / "scripts").glob("*.sh"))
    assert scripts
    result = run([str(BIN / "shellcheck"), *scripts], TEMPLATE)
    assert result.returncode == 0, result.stdout


def test_template_matrix_lists_every_supported_variant() -> None:
    """The workflow's own plan step, run here, yields one matrix entry per variant."""
    workflow = yaml.safe_load((TEMPLATE / ".github/workflows/template.yml").read_text())
    (step,) = [step for step in workflow["jobs"]["plan"]["steps"] if step.get("id") == "variants"]
    output = TEMPLATE / "build" / f"github-output-{os.getpid()}"
    output.parent.mkdir(exist_ok=True)
    try:
        result = run(
            ["bash", "-euo", "pipefail", "-c", step["run"]],
            TEMPLATE,
            os.environ | {"GITHUB_OUTPUT": str(output), "PATH": f"{BIN}:{os.environ['PATH']}"},
        )
        assert result.returncode == 0, result.stderr
        name, _, value = output.read_text().strip().partition("=")
    finally:
        output.unlink(missing_ok=True)
    assert name == "variants"
    assert [entry["index"] for entry in json.loads(value)] == list(range(len(SUPPORTED)))


# --- A real k6 run against a rendered service on PostgreSQL -------------------------

LOAD_VARIANTS = [
    pytest.param({}, id="defaults"),
    pytest.param({"example_domain": "none", "include_frontend": "no"}, id="skeleton"),
]
STARTUP_TIMEOUT_SECONDS = 60


def answers_ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))

    async def drop() -> None:
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(drop())


@contextlib.contextmanager
def serve_rendered(
    cookies_session: Any, extra_context: dict[str, str], service_env: dict[str, str] | None = None
) -> Iterator[tuple[dict[str, str], Path, str]]:
    """A rendered project, installed and migrated into a database of its own, served
    as the image serves it (production settings, the configured workers), with
    `service_env` on top; yields its answers, directory and base URL."""
    result = cookies_session.bake(extra_context={**extra_context, "run_checks": "no"})
    assert result.exit_code == 0, result.exception
    project = Path(result.project_path)
    env = os.environ | {"PATH": f"{BIN}:{os.environ['PATH']}"}
    install = run(["make", "install", f"PYTHON={sys.executable}"], project, env)
    assert install.returncode == 0, install.stdout + install.stderr
    database = f"k6_{uuid.uuid4().hex[:12]}"
    resolved = run([sys.executable, "scripts/resolve_database.py", "--database", database], project)
    assert resolved.returncode == 0, f"no PostgreSQL for the service: {resolved.stderr}"
    url = resolved.stdout.strip()
    env["APP_DATABASE__URL"] = url
    try:
        migrated = run(["make", "init-db"], project, env)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        port = free_port()
        service_env = env | {
            "APP_ENVIRONMENT": "production",
            "APP_SERVER__HOST": "127.0.0.1",
            "APP_SERVER__PORT": str(port),
            "APP_METRICS__HOST": "127.0.0.1",
            "APP_METRICS__PORT": str(free_port()),
            **identity_provider.service_environment(project),
            **(service_env or {}),
        }
        with (project / "service.log").open("wb") as log:
            service = subprocess.Popen(
                [str(project / "backend/.venv/bin/python"), "-m", result.context["package_name"]],
                cwd=project,
                env=service_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
            while not answers_ready(base_url):
                assert service.poll() is None, (project / "service.log").read_text()
                assert time.monotonic() < deadline, "the service never became ready"
                time.sleep(0.2)
            yield dict(result.context), project, base_url
        finally:
            service.terminate()
            service.wait(timeout=60)
    finally:
        drop_database(url)


@pytest.fixture(scope="module", params=LOAD_VARIANTS)
def served(
    request: pytest.FixtureRequest, cookies_session: Any
) -> Iterator[tuple[dict[str, str], Path, str]]:
    with serve_rendered(cookies_session, request.param) as served_project:
        yield served_project


def make_load(project: Path, base_url: str, *variables: str) -> subprocess.CompletedProcess[str]:
    # A token the production-configured service trusts, not the development one make mints.
    token = identity_provider.project_token(project)
    credentials = [f"TOKEN={token}"] if token else []
    return run(["make", "load", f"BASE_URL={base_url}", *credentials, *variables], project)


def k6_summary(project: Path, scenario: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (project / "k6" / "results" / f"{scenario}-summary.json").read_text()
    )
    return data


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
