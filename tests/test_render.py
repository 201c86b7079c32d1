"""Every supported variant renders clean: no Jinja left, exactly its own files,
lint-, format-, type- and shellcheck-clean."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from .support.commands import run
from .support.paths import BIN, TEMPLATE
from .support.template_files import (
    JINJA_LEFTOVER,
    answers_with_defaults,
    choice_values,
    manifest,
    project_files,
)
from .variants import SUPPORTED, variant_id

# One cache per xdist worker: mypy's cache is not safe for concurrent writers.
MYPY_CACHE = TEMPLATE / "build" / f"mypy-cache-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def test_every_choice_value_is_in_a_supported_variant() -> None:
    for key, values in choice_values().items():
        covered = {answers_with_defaults(variant)[key] for variant in SUPPORTED}
        assert covered == set(values), (
            f"{key}: no supported variant renders {set(values) - covered}"
        )


def test_manifest_names_every_choice_and_only_real_paths() -> None:
    choices = choice_values()
    template = TEMPLATE / "{{cookiecutter.project_slug}}"
    for option, owners in manifest().items():
        assert set(owners) == set(choices[option]), f"manifest {option}: values differ"
        for paths in owners.values():
            for path in paths:
                rendered_path = path.replace("{package_name}", "{{cookiecutter.package_name}}")
                assert (template / rendered_path).exists(), f"manifest names missing {path}"


@pytest.fixture
def rendered(variant: dict[str, str], bake: Any) -> tuple[dict[str, str], Path]:
    return answers_with_defaults(variant), bake(variant)


def test_no_template_syntax_left(rendered: tuple[dict[str, str], Path]) -> None:
    _, project = rendered
    for path in project_files(project):
        assert not JINJA_LEFTOVER.search(str(path.relative_to(project))), path
        if path.is_file():
            assert not JINJA_LEFTOVER.search(path.read_text(errors="replace")), path


def test_holds_exactly_the_chosen_options_files(rendered: tuple[dict[str, str], Path]) -> None:
    answers, project = rendered
    package = "ledger_api"
    owned = [
        (option, value, PurePosixPath(path.format(package_name=package)))
        for option, owners in manifest().items()
        for value, paths in owners.items()
        for path in paths
    ]
    for option, value, path in owned:
        # Chosen: for each option owning it or a directory above it (frontend/ for
        # frontend/public/js/ledger.js), one of the values that own it.
        owning = {
            (other, other_value)
            for other, other_value, owner in owned
            if owner == path or owner in path.parents
        }
        chosen = all(
            any(answers[other] == v for o, v in owning if o == other) for other, _ in owning
        )
        assert (project / path).exists() == chosen, f"{option}={value}: {path}"


def test_python_is_lint_and_format_clean(rendered: tuple[dict[str, str], Path]) -> None:
    _, project = rendered
    check = run([str(BIN / "ruff"), "check", "backend", "scripts"], project)
    assert check.returncode == 0, check.stdout
    formatted = run([str(BIN / "ruff"), "format", "--check", "backend", "scripts"], project)
    assert formatted.returncode == 0, formatted.stdout


def test_backend_is_type_clean(rendered: tuple[dict[str, str], Path]) -> None:
    _, project = rendered
    result = run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(MYPY_CACHE)], project / "backend"
    )
    assert result.returncode == 0, result.stdout


def test_shell_scripts_are_shellcheck_clean(rendered: tuple[dict[str, str], Path]) -> None:
    _, project = rendered
    scripts = sorted(str(path) for path in project.rglob("*.sh"))
    assert scripts, "no shell scripts rendered"
    result = run([str(BIN / "shellcheck"), *scripts], project)
    assert result.returncode == 0, result.stdout


SKELETONS = [
    variant for variant in SUPPORTED if answers_with_defaults(variant)["example_domain"] == "none"
]
# Names only the ledger example uses; the dependency lists are shared by both variants.
EXAMPLE_WORDS = re.compile(
    r"/v1/accounts|/v1/transfers|Idempotency-Key|idempotency_keys|ledger_entries|balance_minor"
    r"|iso4217"
)
SHARED_FILES = {"backend/pyproject.toml", "backend/uv.lock"}


@pytest.mark.parametrize("variant", SKELETONS, ids=variant_id)
def test_the_skeleton_holds_no_example_code_or_tables(variant: dict[str, str], bake: Any) -> None:
    project = bake(variant)
    for path in project_files(project):
        relative = path.relative_to(project).as_posix()
        if path.is_file() and relative not in SHARED_FILES:
            found = EXAMPLE_WORDS.search(path.read_text(errors="replace"))
            assert found is None, f"{relative}: {found.group(0) if found else ''}"
    migrations = sorted(path.name for path in (project / "backend/migrations/versions").iterdir())
    answers = answers_with_defaults(variant)
    worker = (
        ["0004_outbox_webhooks.py", "0005_outbox_relay.py", "0007_outbox_event_ids.py"]
        if answers["background_worker"] == "yes"
        else []
    )
    keys = ["0006_api_keys.py"] if answers["auth"] in ("api_key", "both") else []
    assert migrations == sorted(["0001_baseline.py", *worker, *keys])
    # No package left with nothing in it but its __init__.py.
    empty = [
        init.parent.relative_to(project).as_posix()
        for init in project.rglob("__init__.py")
        if {child.name for child in init.parent.iterdir()} - {"__pycache__"} == {"__init__.py"}
    ]
    assert empty == []
