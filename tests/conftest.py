"""The suite's fixtures and its `--variant`/`--no-variants` options; the helpers
the tests share live in tests/support/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .support.rendering import baked, installed_project
from .variants import SUPPORTED, variant_id


@pytest.fixture
def bake(cookies: Any) -> Callable[[dict[str, str]], Path]:
    """Render with the given answers and the post-generation checks off (in-process,
    fast); the project's directory."""

    def _bake(extra: dict[str, str]) -> Path:
        return baked(cookies, extra)[1]

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
        renders[key] = baked(cookies_session, variant)
    return renders[key]


@pytest.fixture(scope="session")
def installed_default(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default variant rendered and `make install`ed, for tests that run it and
    leave it as they found it."""
    return installed_project(tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="session")
def renders() -> dict[str, tuple[dict[str, str], Path]]:
    return {}
