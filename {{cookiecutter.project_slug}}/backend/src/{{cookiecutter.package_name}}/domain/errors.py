"""The base of every business-rule failure; handlers give each kind its own problem type."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain said no. The message is safe to show to the client."""


class InvalidValueError(DomainError, ValueError):
    """An input value breaks a rule of its type (also a ValueError, so that
    validation libraries report it like any other invalid value)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
