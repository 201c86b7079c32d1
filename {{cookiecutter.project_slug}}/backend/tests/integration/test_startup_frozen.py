"""While the app serves, what its start-up built is out of the garbage collector's
sight (gc.freeze), so a full collection walks only what serving allocated."""

from __future__ import annotations

import gc

import pytest

from {{ cookiecutter.package_name }}.configuration import Settings
from {{ cookiecutter.package_name }}.startup import create_app

pytestmark = pytest.mark.anyio


async def test_start_up_is_frozen_while_serving(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        frozen = gc.get_freeze_count()
    # Every module loaded, the app and the pool: far more than this.
    assert frozen > 50_000
    assert gc.get_freeze_count() == 0
