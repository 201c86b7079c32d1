"""Who is calling: a plain value the handlers hand to the domain, with no I/O behind it."""

from __future__ import annotations

from dataclasses import dataclass

# An API key's principal is `api-key:<its subject>`, and a token naming a subject in
# this namespace is refused (auth/tokens.py): a key named like a user ("alice") is
# never that user, nor can a token's `sub` make someone a key's owner.
API_KEY_SUBJECT_PREFIX = "api-key:"
# The longest subject a principal may have: what an account's holder column takes.
SUBJECT_MAX_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller: the token's subject (`sub`) and the scopes it grants."""

    subject: str
    scopes: frozenset[str]

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
