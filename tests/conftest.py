"""Shared helpers: render the template with pytest-cookies and read what it owns."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .harness import installed_project
from .variants import SUPPORTED, variant_id

TEMPLATE = Path(__file__).resolve().parents[1]
# Not Jinja: GitHub Actions expressions `${{ … }}` in the rendered workflows, and
# CloudFormation's dynamic references `{{resolve:secretsmanager:…}}`.
JINJA_LEFTOVER = re.compile(r"(?<!\$)\{\{(?!resolve:)|\{%|\{#")


def render_cli(
    output: Path, *answers: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`cookiecutter <template> --no-input -o <output> key=value…`, as a user runs it."""
    command = [sys.executable, "-m", "cookiecutter", str(TEMPLATE), "--no-input"]
    return subprocess.run(
        [*command, "--output-dir", str(output), *answers],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def shell_block(markdown: str, heading: str) -> str:
    """The first ```sh block after `heading`, exactly as the document shows it."""
    after = markdown[markdown.index(heading) :]
    return after.split("```sh\n", 1)[1].split("```", 1)[0]


def cookiecutter_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    return data


def choice_values() -> dict[str, list[str]]:
    """The questions with a list of values (private keys such as `_extensions` are none)."""
    return {
        key: value
        for key, value in cookiecutter_json().items()
        if isinstance(value, list) and not key.startswith("_")
    }


def manifest() -> dict[str, dict[str, list[str]]]:
    data: dict[str, dict[str, list[str]]] = yaml.safe_load((TEMPLATE / "manifest.yaml").read_text())
    return data


def answers_with_defaults(extra: dict[str, str]) -> dict[str, str]:
    """The value each choice takes: the first listed unless `extra` overrides it."""
    return {key: extra.get(key, values[0]) for key, values in choice_values().items()}


def project_files(project: Path) -> Iterator[Path]:
    for path in sorted(project.rglob("*")):
        if any(
            part in {".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
            for part in path.relative_to(project).parts
        ):
            continue
        yield path


@pytest.fixture
def bake(cookies: Any) -> Any:
    """Render with the given answers and the post-generation checks off (fast)."""

    def _bake(extra: dict[str, str], *, checks: bool = False) -> Any:
        context = {**extra, "run_checks": "yes" if checks else "no"}
        return cookies.bake(extra_context=context)

    return _bake


@pytest.fixture(params=SUPPORTED, ids=variant_id)
def variant(request: pytest.FixtureRequest) -> dict[str, str]:
    """Each supported combination of answers (tests/variants.py); --variant N picks one."""
    answers: dict[str, str] = request.param
    return answers


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("variants", "split the suite by supported variant (CI matrix)")
    group.addoption(
        "--variant",
        type=int,
        metavar="N",
        help="run only the tests of tests/variants.py SUPPORTED[N]",
    )
    group.addoption(
        "--no-variants", action="store_true", help="run every test except the per-variant ones"
    )


def _variant_of(item: pytest.Item) -> dict[str, str] | None:
    """The SUPPORTED entry a test is parametrized with (the `variant` fixture), if any."""
    callspec = getattr(item, "callspec", None)
    variant: dict[str, str] | None = callspec.params.get("variant") if callspec else None
    return variant


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    index, no_variants = config.getoption("--variant"), config.getoption("--no-variants")
    if index is None and not no_variants:
        return
    wanted = None if index is None else SUPPORTED[index]
    config.hook.pytest_deselected(items=[item for item in items if _variant_of(item) != wanted])
    items[:] = [item for item in items if _variant_of(item) == wanted]


@pytest.fixture
def shipped(
    variant: dict[str, str], cookies_session: Any, renders: dict[str, tuple[dict[str, str], Path]]
) -> tuple[dict[str, str], Path]:
    """The variant rendered (checks off) once per worker; tests using it only read it."""
    key = variant_id(variant)
    if key not in renders:
        result = cookies_session.bake(extra_context={**variant, "run_checks": "no"})
        assert result.exit_code == 0, result.exception
        renders[key] = dict(result.context), Path(result.project_path)
    return renders[key]


@pytest.fixture(scope="session")
def installed_default(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default variant rendered and `make install`ed, for tests that run it and
    leave it as they found it."""
    return installed_project(tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="session")
def renders() -> dict[str, tuple[dict[str, str], Path]]:
    return {}
