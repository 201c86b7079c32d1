"""Build the rendered project's image for real with buildah, on a
python:3.13-slim-trixie stand-in assembled from Debian packages
(scripts/local_base_image.sh; no registry is reachable here), then run it as
compose would: the migration command once, the API with the image's own CMD and
user, its HEALTHCHECK command, and a k6 smoke run against it. Part of `make test`
as root (`make test-deps` installs buildah and debootstrap); `make image-test` runs
it alone."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .support.commands import run, with_tools
from .support.databases import drop_database_at, unique_name
from .support.k6 import ENVIRONMENT as K6_ENVIRONMENT
from .support.k6 import k6_smoke_command
from .support.paths import BIN, TEMPLATE
from .support.polling import wait_until_answering
from .support.ports import port_is_free
from .support.rendering import baked
from .support.shipped_files import compose

pytestmark = [
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("buildah") is None,
        reason="needs root and buildah: debootstrap and buildah's chroot builds run as "
        "root (`make test-deps` installs both on Debian)",
    ),
    # One worker builds the image once for both tests (a module fixture).
    pytest.mark.xdist_group("image"),
]
STORE = TEMPLATE / "build" / "buildah"
STARTUP_TIMEOUT_SECONDS = 60
STEP_SECONDS = 300  # each command of the build and run, so a hung one fails the test


def buildah(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    command = ["buildah", "--root", str(STORE / "storage"), "--runroot", str(STORE / "run"), *args]
    return run(command, timeout=timeout)


def in_container(container: str, env: dict[str, str]) -> list[str]:
    """`buildah run` in the image's filesystem, user and environment, on the host network."""
    variables = [f"--env={key}={value}" for key, value in env.items()]
    return [
        "buildah",
        "--root",
        str(STORE / "storage"),
        "--runroot",
        str(STORE / "run"),
        "run",
        "--isolation",
        "chroot",
        "--network",
        "host",
        *variables,
        container,
        "--",
    ]


def stop_group(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def image(cookies_session: Any) -> Iterator[tuple[dict[str, Any], Path, dict[str, Any]]]:
    STORE.mkdir(parents=True, exist_ok=True)
    base = run(["bash", "scripts/local_base_image.sh", str(STORE)], TEMPLATE, timeout=STEP_SECONDS)
    assert base.returncode == 0, base.stdout + base.stderr
    # auth=none: the container could not reach a test identity provider on the host's loopback.
    answers, project = baked(cookies_session, {"python_version": "3.13", "auth": "none"})
    lock = run(["make", "lock"], project, with_tools(), timeout=STEP_SECONDS)
    assert lock.returncode == 0, lock.stdout + lock.stderr
    tag = f"localhost/{answers['project_slug']}-api:test"
    # Docker format keeps HEALTHCHECK (OCI has no field for it).
    built = buildah(
        "bud",
        "--format",
        "docker",
        "--pull=never",
        "--layers",
        "--force-rm",
        "--isolation",
        "chroot",
        "--network",
        "host",
        "--tag",
        tag,
        str(project / "backend"),
    )
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    inspected = buildah("inspect", "--type", "image", tag)
    assert inspected.returncode == 0, inspected.stderr
    config = json.loads(inspected.stdout)["Docker"]["config"]
    container = buildah("from", "--pull=never", tag).stdout.strip()
    try:
        yield answers, project, {"config": config, "container": container}
    finally:
        buildah("rm", container)
        buildah("rmi", tag)


def test_runtime_image_runs_as_a_user_with_the_configured_command(
    image: tuple[dict[str, Any], Path, dict[str, Any]],
) -> None:
    answers, _, built = image
    config = built["config"]
    assert config["User"].split(":")[0] not in {"", "0", "root"}
    assert config["Cmd"] == ["python", "-m", answers["package_name"]]
    assert "APP_ENVIRONMENT=production" in config["Env"]
    assert config["Healthcheck"]["Test"][0] == "CMD"


def test_image_migrates_serves_passes_its_healthcheck_and_k6_smoke(
    image: tuple[dict[str, Any], Path, dict[str, Any]],
) -> None:
    _, project, built = image
    config, container = built["config"], built["container"]
    (port,) = (int(spec.split("/")[0]) for spec in config["ExposedPorts"])
    assert port_is_free(port), f"port {port} (EXPOSE) is taken on 127.0.0.1; free it and re-run"
    server = run(
        [
            sys.executable,
            "scripts/resolve_database.py",
            "--database",
            unique_name("image"),
        ],
        project,
        timeout=STEP_SECONDS,
    )
    assert server.returncode == 0, server.stderr
    url = server.stdout.strip()
    run([sys.executable, "scripts/create_database.py", url], project, timeout=STEP_SECONDS)
    # The migrate command also gives the API's role its grants (backend/scripts/app_role.py).
    env = {"APP_DATABASE__URL": url, "APP_ROLE_PASSWORD": f"image-{uuid.uuid4().hex}"}
    try:
        migrate = compose(project)["services"]["migrate"]["command"]
        migrated = run([*in_container(container, env), *migrate], project, timeout=STEP_SECONDS)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr

        # The image's CMD listens on 0.0.0.0 (production.yaml); here only on 127.0.0.1.
        api_env = env | {"APP_SERVER__HOST": "127.0.0.1"}
        with (project / "image.log").open("wb") as log:
            # A session of its own: `buildah run` does not pass SIGTERM on to uvicorn's
            # worker processes, so the whole group is signalled at the end.
            api = subprocess.Popen(
                [*in_container(container, api_env), *config["Cmd"]],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_answering(
                f"{base_url}/health/ready",
                STARTUP_TIMEOUT_SECONDS,
                "the container becoming ready",
                process=api,
                output=(project / "image.log").read_text,
                interval=0.3,
            )
            healthcheck = run(
                [*in_container(container, {}), *config["Healthcheck"]["Test"][1:]],
                project,
                timeout=STEP_SECONDS,
            )
            assert healthcheck.returncode == 0, healthcheck.stderr
            smoke = run(
                k6_smoke_command(BIN / "k6", base_url, "5s"),
                project,
                os.environ | K6_ENVIRONMENT,
                timeout=STEP_SECONDS,
            )
            assert smoke.returncode == 0, smoke.stdout + smoke.stderr
            assert (project / "smoke-summary.json").is_file()
        finally:
            stop_group(api)
    finally:
        drop_database_at(url)
