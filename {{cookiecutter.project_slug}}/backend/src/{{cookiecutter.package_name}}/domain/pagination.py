"""Keyset pagination: a page ends at a row, and the next page starts after it.

Unlike OFFSET, a position stays valid while rows are inserted, so a client that
walks every page sees each row that existed when it started exactly once.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import DomainError

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
CURSOR_MAX_LENGTH = 64
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
MAX_ID = 2**53 - 1  # bigint row ids, kept exact as JSON numbers in every client
_PLAIN_CURSOR = re.compile(r"([a-z]+):(0|[1-9][0-9]{0,15})")

Row = TypeVar("Row")


class InvalidCursorError(DomainError):
    def __init__(self) -> None:
        super().__init__("the cursor is not one this listing returned; start again without it")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: after the row with this id, in this listing.
    Opaque to clients (URL-safe base64), so its content can change later."""

    listing: str
    after_id: int

    def encode(self) -> str:
        plain = f"{self.listing}:{self.after_id}".encode()
        return base64.urlsafe_b64encode(plain).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str, listing: str) -> Cursor:
        if len(text) > CURSOR_MAX_LENGTH:
            raise InvalidCursorError
        try:
            plain = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
            match = _PLAIN_CURSOR.fullmatch(plain.decode("ascii"))
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidCursorError from None
        if match is None or match.group(1) != listing or int(match.group(2)) > MAX_ID:
            raise InvalidCursorError
        return cls(listing, int(match.group(2)))

    @classmethod
    def resume(cls, text: str | None, listing: str) -> Cursor:
        """Where a page request starts: the first row without a cursor, else after it."""
        return cls(listing, 0) if text is None else cls.decode(text, listing)


@dataclass(frozen=True, slots=True)
class Page(Generic[Row]):
    items: Sequence[Row]
    next_cursor: Cursor | None


def page_of(
    rows: Sequence[Row], limit: int, cursor: Cursor, row_id: Callable[[Row], int]
) -> Page[Row]:
    """Build a page from up to limit + 1 rows fetched in id order: the extra row
    only tells whether another page follows."""
    items = rows[:limit]
    if len(rows) <= limit or not items:
        return Page(items, None)
    return Page(items, Cursor(cursor.listing, row_id(items[-1])))
