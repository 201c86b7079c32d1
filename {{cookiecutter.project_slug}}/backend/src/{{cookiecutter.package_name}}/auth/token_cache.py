"""Tokens already verified by this worker, until they expire: a repeated token costs
a dictionary lookup instead of a signature check."""

from __future__ import annotations

import time

from ..principal import Principal


class VerifiedTokens:
    """At most `capacity` tokens, each kept until its own expiry. When full, the
    oldest entry goes first (dicts keep insertion order): a flood of distinct tokens
    costs memory bounded by capacity times the largest accepted Authorization header."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: dict[str, tuple[Principal, float]] = {}

    def get(self, token: str) -> Principal | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        principal, expires_at = entry
        if time.time() >= expires_at:
            del self._entries[token]
            return None
        return principal

    def put(self, token: str, principal: Principal, expires_at: float) -> None:
        if len(self._entries) >= self._capacity:
            del self._entries[next(iter(self._entries))]
        self._entries[token] = (principal, expires_at)

    def __len__(self) -> int:
        return len(self._entries)
