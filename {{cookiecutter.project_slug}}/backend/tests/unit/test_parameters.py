"""The ledger's shared parameters: a JSON integer is what the published schema allows."""

from __future__ import annotations

import gc
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ValidationError

from {{ cookiecutter.package_name }}.handlers.parameters import JSON_INTEGER


class Body(BaseModel):
    amount: Annotated[int, JSON_INTEGER]


def refused(value: Any) -> list[Any]:
    """The errors of a refused value, kept in this frame as FastAPI keeps them in its
    own while it answers (the 422 is built from them)."""
    try:
        Body.model_validate({"amount": value})
    except ValidationError as error:
        errors = error.errors()
    else:
        errors = []
    return [{key: found[key] for key in ("type", "loc", "msg", "input")} for found in errors]


@pytest.mark.parametrize("value", [True, "5", 1.5, None])
def test_what_is_no_json_integer_is_refused(value: Any) -> None:
    assert refused(value) == [
        {
            "type": "value_error",
            "loc": ("amount",),
            "msg": "Value error, Input should be an integer",
            "input": value,
        }
    ]


def test_an_integral_number_is_an_integer() -> None:
    assert Body.model_validate({"amount": 5.0}).amount == 5


def test_a_refusal_leaves_no_reference_cycle() -> None:
    """The refused request's frames, its body among their locals, are freed when it is
    answered, not at the garbage collector's next pass."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        refused("5")
        gc.collect()
        kept = [type(found).__name__ for found in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert kept == []
