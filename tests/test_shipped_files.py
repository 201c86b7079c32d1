"""What ships with every rendered variant passes its real validator: hadolint on the
Dockerfile, the compose-spec schema, actionlint, yamllint, `k6 inspect`; and the
pieces agree with each other and with the service's own configuration."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import yaml
from docker.utils.build import exclude_paths

from template_extensions import db_budget

from .support.commands import run, with_tools
from .support.k6 import k6_inspect
from .support.paths import BIN
from .support.shipped_files import compose, dockerfile, final_stage, instructions

HEALTHCHECK_URL = re.compile(r"http://127\.0\.0\.1:(\d+)(/[\w/]+)")
# Compose's `${NAME:-default}` interpolation, the only form the compose file uses.
COMPOSE_DEFAULT = re.compile(r"\$\{\w+:-([^}]*)\}")
# Compose's `${NAME:?message}`: no value, no start.
REQUIRED_VARIABLE = re.compile(r"\$\{(\w+):\?[^}]+\}")
SERVER_OVERRIDES = ("APP_SERVER__PORT", "APP_SERVER__WORKERS")


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
    # With bearer tokens, production needs an identity provider to name (the probe
    # builds the app; it fetches no keys); with API keys, a pepper of its own.
    package = next((project / "backend" / "src").iterdir())
    provider = {}
    if (package / "auth" / "tokens.py").is_file():
        provider["APP_AUTH__ISSUER"] = "https://issuer.example/"
    if (package / "auth" / "api_keys.py").is_file():
        provider["APP_AUTH__API_KEY_PEPPER"] = "p" * 32
    env = (
        os.environ
        | overrides
        | provider
        | {
            "PYTHONPATH": str(project / "backend" / "src"),
            "APP_ENVIRONMENT": "production",
            "APP_CONFIG_DIR": str(project / "backend" / "configuration"),
            "APP_DATABASE__URL": "postgresql://probe@127.0.0.1:5432/probe",
        }
    )
    result = run([sys.executable, "-c", probe], project, env, timeout=300)
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
    lock = run(["make", "lock"], project, with_tools(), timeout=300)
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
