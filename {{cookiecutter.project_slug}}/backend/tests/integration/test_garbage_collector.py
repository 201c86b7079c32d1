"""A started app sets its process's garbage collector to a serving pace."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from {{ cookiecutter.package_name }}.garbage_collector import YOUNG_GENERATION_THRESHOLD

pytestmark = pytest.mark.anyio
PYTHON_DEFAULT_YOUNG_THRESHOLD = 700


@pytest.fixture
def python_default_pace() -> Iterator[tuple[int, int, int]]:
    """Python's own thresholds until the test ends, whatever an earlier app set."""
    before = gc.get_threshold()
    gc.set_threshold(PYTHON_DEFAULT_YOUNG_THRESHOLD, before[1], before[2])
    yield gc.get_threshold()
    gc.set_threshold(*before)


async def test_starting_the_app_raises_only_the_young_threshold(
    python_default_pace: tuple[int, int, int], app: FastAPI
) -> None:
    del app  # started: its lifespan has run
    _, older, oldest = python_default_pace
    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, older, oldest)
