"""Who is calling: a plain value the handlers hand to the domain, with no I/O behind it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller: the token's subject (`sub`) and the scopes it grants."""

    subject: str
    scopes: frozenset[str]

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
