"""The rendered project's docker compose stack for real, under the Docker engine
`make test-deps` starts, with the Compose v2 plugin: `docker compose up --build
--wait`, the one-shot migration, the API healthy by its own HEALTHCHECK, the
console's nginx; k6 through both entry points; the console in Chromium; a second
`up`; `stop api` under load; the database stopped and started under the API; the
image's size and privileges; `down -v`. For the default project and the
`example_domain=none` skeleton, each rendered with python_version=3.13, the one
version whose slim base has a faithful stand-in here (Debian trixie's Python):
no registry is reachable, so scripts/stand_in_images.sh assembles the base images.
Figures are printed (`pytest -s`)."""

from __future__ import annotations

import http.client
import itertools
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from playwright.sync_api import ConsoleMessage

from .support.browser import launched
from .support.commands import run, with_tools
from .support.compose_stack import Stack, base_images, engine_problem, http_get
from .support.paths import TEMPLATE
from .support.rendering import render

ENGINE_PROBLEM = engine_problem()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(ENGINE_PROBLEM is not None, reason=f"no compose stack: {ENGINE_PROBLEM}"),
    # One worker, one stack at a time: the machine has two cores.
    pytest.mark.xdist_group("compose"),
]
# auth=none: the stack has no identity provider its containers could reach, and its
# production configuration trusts no development key.
VARIANTS = {
    "default": ["python_version=3.13", "auth=none"],
    "skeleton": ["python_version=3.13", "example_domain=none", "auth=none"],
}
# Bounds for the stack to settle; generous for a busy two-core machine.
UP_SECONDS = 600
READY_SECONDS = 60
IMAGE_LIMIT_BYTES = 200 * 1000 * 1000


def figure(label: str, value: object) -> None:
    print(f"\ncompose figure: {label}: {value}")


@pytest.fixture(scope="module", params=sorted(VARIANTS), ids=sorted(VARIANTS))
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    output = tmp_path_factory.mktemp(f"compose-{request.param}")
    project = render(output, VARIANTS[request.param], env=with_tools())
    stack = Stack(project=project, answers={"variant": request.param})
    # The README's commands for a project rendered with run_checks=no: the lock, the
    # local passwords, then compose.
    for target in ("lock", ".env"):
        made = stack.run("make", target)
        assert made.returncode == 0, made.stdout + made.stderr
    # A fresh machine assembles them (minutes); later runs find them in the engine.
    images = stack.run(
        "bash", str(TEMPLATE / "scripts/stand_in_images.sh"), *base_images(project), timeout=1800
    )
    assert images.returncode == 0, images.stdout + images.stderr
    start = time.monotonic()
    up = stack.compose("up", "--build", "--wait", timeout=UP_SECONDS)
    figure(
        f"{request.param}: up --build --wait, healthy after", f"{time.monotonic() - start:.1f} s"
    )
    try:
        assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-4000:] + logs(stack)
        yield stack
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", timeout=120)
        run(["docker", "image", "rm", "--force", f"{project.name}-api:local"])


def logs(stack: Stack) -> str:
    return stack.compose("logs", "--no-color", "--tail", "60").stdout[-6000:]


def has_console(stack: Stack) -> bool:
    return (stack.project / "frontend" / "nginx.conf").exists()


def test_stack_is_migrated_and_healthy(stack: Stack) -> None:
    migrate = stack.container("migrate")
    assert migrate["State"]["Status"] == "exited"
    assert migrate["State"]["ExitCode"] == 0
    migrate_log = stack.compose("logs", "--no-color", "migrate").stdout
    assert "Running upgrade" in migrate_log
    assert "app_role: role" in migrate_log
    api = stack.container("api")
    assert api["State"]["Health"]["Status"] == "healthy", logs(stack)
    assert http_get(f"{stack.api_url}/health/ready")[0] == 200
    if has_console(stack):
        assert stack.container("frontend")["State"]["Status"] == "running"
        status, headers, body = http_get(f"{stack.console_url}/")
        assert status == 200
        assert b"<html" in body.lower()
        assert headers["x-content-type-options"] == ["nosniff"]


def test_api_connects_as_its_own_role_with_row_privileges_only(stack: Stack) -> None:
    package = stack.project.name.replace("-", "_")
    role = f"{package}_app"

    def sql(query: str) -> str:
        result = stack.compose(
            "exec", "-T", "db", "psql", "-U", "app", "-d", package, "-Atc", query
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    users = sql(
        "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = current_database()"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    assert users.split() == [role]
    assert (
        sql(f"SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = '{role}'")
        == "f|f|f"
    )
    assert sql(f"SELECT has_schema_privilege('{role}', 'public', 'CREATE')") == "f"
    tables = sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    writable = sql(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND (SELECT"
        f" bool_and(has_table_privilege('{role}', format('%I.%I', schemaname, tablename), p))"
        " FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p)"
    )
    # Every table but alembic_version, which the API only reads.
    assert int(writable) == int(tables) - 1
    assert sql(f"SELECT has_table_privilege('{role}', 'alembic_version', 'UPDATE')") == "f"


def test_k6_smoke_through_the_api_port_and_the_console_proxy(stack: Stack) -> None:
    entries = {"api port": stack.api_url}
    if has_console(stack):
        entries["console /api/"] = f"{stack.console_url}/api"
    for label, base_url in entries.items():
        summary = stack.k6_smoke(base_url, f"smoke-{label.split()[0]}.json")
        metrics = summary["metrics"]
        duration = metrics["http_req_duration"]["values"]
        figure(
            f"{stack.answers['variant']}: k6 smoke via {label}",
            f"{metrics['http_reqs']['values']['count']} requests, "
            f"failed rate {metrics['http_req_failed']['values']['rate']}, "
            f"p95 {duration['p(95)']:.1f} ms, p99 {duration['p(99)']:.1f} ms",
        )
        assert metrics["http_reqs"]["values"]["count"] > 0


def test_console_proxy_sends_each_security_header_once(stack: Stack) -> None:
    if not has_console(stack):
        pytest.skip("rendered without the console (include_frontend=no)")
    status, headers, _ = http_get(f"{stack.console_url}/api/health/live")
    assert status == 200
    doubled = {name: values for name, values in headers.items() if len(values) > 1}
    assert doubled == {}
    assert headers["x-content-type-options"] == ["nosniff"]
    assert headers["referrer-policy"] == ["no-referrer"]


def test_console_page_loads_through_nginx_without_console_errors(stack: Stack) -> None:
    if not has_console(stack):
        pytest.skip("rendered without the console (include_frontend=no)")
    errors: list[str] = []

    def record(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    with launched() as browser:
        page = browser.new_page()
        page.on("console", record)
        page.on("pageerror", lambda error: errors.append(str(error)))
        answered = page.goto(f"{stack.console_url}/", wait_until="networkidle")
        assert answered is not None
        assert answered.status == 200
        assert page.title()
    assert errors == []


def test_image_is_small_unprivileged_and_without_build_tools(stack: Stack) -> None:
    api = stack.container("api")
    image = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Size}}", api["Image"]],
        capture_output=True,
        text=True,
        check=True,
    )
    size = int(image.stdout)
    figure(f"{stack.answers['variant']}: runtime image size", f"{size / 1e6:.1f} MB")
    assert size < IMAGE_LIMIT_BYTES
    host = api["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    who = stack.compose("exec", "-T", "api", "id", "-u")
    assert who.returncode == 0, who.stderr
    assert who.stdout.strip() not in {"", "0"}
    written = stack.compose("exec", "-T", "api", "sh", "-c", "touch /app/x")
    assert written.returncode != 0
    assert "Read-only file system" in written.stderr
    # What the builder stage used and the dev dependency group never reach the runtime.
    absent = stack.compose(
        "exec",
        "-T",
        "api",
        "sh",
        "-c",
        "for tool in uv gcc cc strip pytest ruff mypy pip-compile; do"
        ' command -v "$tool"; done;'
        " ls /opt/venv/lib/python*/site-packages | grep -iE '^(pytest|ruff|mypy|uv)[-_.]'",
    )
    assert absent.stdout.strip() == ""


def test_second_up_migrates_nothing_and_changes_nothing(stack: Stack) -> None:
    api_before = stack.container("api")
    up = stack.compose("up", "--wait", timeout=UP_SECONDS)
    assert up.returncode == 0, up.stderr[-3000:]
    api_after = stack.container("api")
    assert api_after["Id"] == api_before["Id"]
    assert api_after["State"]["StartedAt"] == api_before["State"]["StartedAt"]
    migrate = stack.container("migrate")
    assert migrate["State"]["ExitCode"] == 0
    # The logs of the last run only: compose reruns the exited one-shot container.
    last_run = stack.run("docker", "logs", "--since", migrate["State"]["StartedAt"], migrate["Id"])
    combined = last_run.stdout + last_run.stderr
    assert "Running upgrade" not in combined
    assert "app_role: role" in combined


def test_database_restart_makes_ready_503_then_200_without_restarting_the_api(
    stack: Stack,
) -> None:
    before = stack.container("api")
    ready = f"{stack.api_url}/health/ready"
    stopped = stack.compose("stop", "db", timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    try:
        figure(
            f"{stack.answers['variant']}: db stopped, ready 503 after",
            f"{stack.wait_for(ready, 503, READY_SECONDS):.1f} s",
        )
        assert http_get(f"{stack.api_url}/health/live")[0] == 200
    finally:
        started = stack.compose("start", "db", timeout=120)
    assert started.returncode == 0, started.stderr
    figure(
        f"{stack.answers['variant']}: db started, ready 200 after",
        f"{stack.wait_for(ready, 200, READY_SECONDS):.1f} s",
    )
    after = stack.container("api")
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]
    assert after["RestartCount"] == before["RestartCount"]


class Load:
    """Requests on new connections, from threads, straight to the API container on
    the compose network this test created (no port proxy in between), each with its
    own X-Request-ID, which the API logs with every request it handled."""

    def __init__(self, host: str, path: str, threads: int = 8) -> None:
        self.host, self.path = host, path
        self.prefix = f"drain-{uuid.uuid4().hex[:8]}"
        self.answered: dict[str, int] = {}
        self.unanswered: Counter[str] = Counter()
        self.serial = itertools.count()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.workers = [threading.Thread(target=self.loop) for _ in range(threads)]

    def one(self) -> None:
        request_id = f"{self.prefix}-{next(self.serial)}"
        connection = http.client.HTTPConnection(self.host, 8000, timeout=5)
        try:
            connection.request(
                "GET", self.path, headers={"Connection": "close", "X-Request-ID": request_id}
            )
            status = connection.getresponse().status
        except (OSError, http.client.HTTPException) as error:
            with self.lock:
                self.unanswered[type(error).__name__] += 1
            time.sleep(0.05)
        else:
            with self.lock:
                self.answered[request_id] = status
        finally:
            connection.close()

    def loop(self) -> None:
        while not self.stop.is_set():
            self.one()

    def __enter__(self) -> Load:
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for worker in self.workers:
            worker.join(timeout=30)


def test_stop_api_under_load_fails_no_accepted_request(stack: Stack) -> None:
    api = stack.container("api")
    (network,) = api["NetworkSettings"]["Networks"].values()
    with Load(network["IPAddress"], "/health/ready") as load:
        time.sleep(2)
        start = time.monotonic()
        stopped = stack.compose("stop", "api", timeout=120)
        took = time.monotonic() - start
        time.sleep(1)
    assert stopped.returncode == 0, stopped.stderr
    statuses = Counter(load.answered.values())
    figure(
        f"{stack.answers['variant']}: stop api under load",
        f"{took:.1f} s; answers {dict(statuses)}; never answered {dict(load.unanswered)}",
    )
    # SIGTERM reached uvicorn: it exited by itself, before the grace period's SIGKILL.
    assert stack.container("api")["State"]["ExitCode"] != 137
    assert statuses
    assert set(statuses) == {200}
    # Every request the API took in was answered: connections it never accepted (refused,
    # or reset in the listen backlog when the socket closed) are the only ones unanswered.
    handled = {
        line["request_id"]
        for line in stack.json_logs("api")
        if str(line.get("request_id", "")).startswith(load.prefix)
    }
    assert handled, "the API logged none of the requests"
    assert handled <= set(load.answered), sorted(handled - set(load.answered))[:5]
    restarted = stack.compose("up", "--wait", timeout=UP_SECONDS)
    assert restarted.returncode == 0, restarted.stderr[-3000:]


def test_make_db_lets_the_host_workflow_use_the_compose_database(stack: Stack) -> None:
    """`make db`, then the seed's own workflow from the host: init-db and smoke reach the
    compose database through the loopback port resolve_database.py finds."""
    made = stack.run("make", "db", timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    published = stack.compose("port", "db", "5432").stdout.strip()
    assert published.startswith("127.0.0.1:")
    resolved = stack.run("python3", "scripts/resolve_database.py")
    assert resolved.returncode == 0, resolved.stderr
    assert f"@{published}/" in resolved.stdout
    for target in ("install", "init-db", "smoke"):
        result = stack.run("make", target, timeout=600)
        assert result.returncode == 0, (
            f"make {target}: " + result.stdout[-2000:] + result.stderr[-2000:]
        )


def test_console_proxy_follows_the_api_to_a_new_address(stack: Stack) -> None:
    """A recreated API container (`up --build` after a change) may get another address;
    nginx must not keep sending /api/ to the old one. A throwaway container takes the
    address the stopped API frees, so its next start cannot have it back."""
    if not has_console(stack):
        pytest.skip("no console in this variant (include_frontend=no)")
    before = stack.container("api")
    ((network, endpoint),) = before["NetworkSettings"]["Networks"].items()
    stopped = stack.compose("stop", "api", timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    squatter = f"{stack.name}-squatter"
    try:
        taken = stack.run(
            "docker", "run", "--detach", "--rm", "--name", squatter, "--network", network,
            "--entrypoint", "sleep", stack.image("frontend"), "300",
        )  # fmt: skip
        assert taken.returncode == 0, taken.stderr
        up = stack.compose("up", "--wait", timeout=UP_SECONDS)
        assert up.returncode == 0, up.stderr[-3000:]
        (moved,) = stack.container("api")["NetworkSettings"]["Networks"].values()
        assert moved["IPAddress"] != endpoint["IPAddress"]
        figure(
            f"{stack.answers['variant']}: console /api/ after the API moved, 200 after",
            f"{stack.wait_for(f'{stack.console_url}/api/health/ready', 200, READY_SECONDS):.1f} s",
        )
    finally:
        stack.run("docker", "rm", "--force", squatter)


def test_down_volumes_leaves_nothing(stack: Stack) -> None:
    assert any(stack.leftovers().values())
    down = stack.compose("down", "--volumes", timeout=120)
    assert down.returncode == 0, down.stderr
    assert stack.leftovers() == {"containers": [], "networks": [], "volumes": []}
