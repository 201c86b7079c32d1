"""Keyset pagination cursors and pages, as pure domain code."""

from __future__ import annotations

import base64
import re

import pytest

from {{ cookiecutter.package_name }}.domain.pagination import (
    CURSOR_MAX_LENGTH,
    CURSOR_PATTERN,
    MAX_ID,
    Cursor,
    InvalidCursorError,
    page_of,
)


def encoded(plain: str) -> str:
    return base64.urlsafe_b64encode(plain.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("after_id", [0, 1, 42, MAX_ID])
def test_a_cursor_survives_the_round_trip(after_id: int) -> None:
    text = Cursor("accounts", after_id).encode()
    assert re.fullmatch(CURSOR_PATTERN, text)
    assert len(text) <= CURSOR_MAX_LENGTH
    assert Cursor.decode(text, "accounts") == Cursor("accounts", after_id)


def test_no_cursor_starts_at_the_first_row() -> None:
    assert Cursor.resume(None, "accounts") == Cursor("accounts", 0)
    assert Cursor.resume(Cursor("accounts", 9).encode(), "accounts").after_id == 9


@pytest.mark.parametrize(
    "text",
    [
        "not base64!",
        "0",
        encoded("accounts"),
        encoded("accounts:-1"),
        encoded("accounts:01"),
        encoded("accounts:1.5"),
        encoded(f"accounts:{MAX_ID + 1}"),
        encoded("transfers:5"),
        encoded("accounts:5") + "A" * CURSOR_MAX_LENGTH,
        base64.urlsafe_b64encode(b"\xff\xfe:5").decode(),
    ],
    ids=[
        "not-base64",
        "truncated",
        "no-id",
        "negative",
        "leading-zero",
        "fraction",
        "beyond-max",
        "other-listing",
        "too-long",
        "not-ascii",
    ],
)
def test_a_cursor_this_listing_did_not_issue_is_refused(text: str) -> None:
    with pytest.raises(InvalidCursorError):
        Cursor.decode(text, "accounts")


def test_a_full_page_points_after_its_last_row() -> None:
    page = page_of([10, 11, 12, 13], limit=3, cursor=Cursor("accounts", 9), row_id=int)
    assert list(page.items) == [10, 11, 12]
    assert page.next_cursor == Cursor("accounts", 12)


@pytest.mark.parametrize("rows", [[10, 11, 12], [10], []])
def test_the_last_page_has_no_next_cursor(rows: list[int]) -> None:
    page = page_of(rows, limit=3, cursor=Cursor("accounts", 9), row_id=int)
    assert list(page.items) == rows
    assert page.next_cursor is None
