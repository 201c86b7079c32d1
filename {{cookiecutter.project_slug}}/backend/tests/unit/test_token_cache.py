"""The per-worker cache of verified tokens: bounded, and never past a token's expiry."""

from __future__ import annotations

import time

from {{ cookiecutter.package_name }}.auth.token_cache import VerifiedTokens
from {{ cookiecutter.package_name }}.principal import Principal

ALICE = Principal("alice", frozenset({"a"}))


def test_a_token_is_kept_until_it_expires() -> None:
    cache = VerifiedTokens(10)
    cache.put("live", ALICE, time.time() + 60)
    cache.put("expired", ALICE, time.time() - 1)
    assert cache.get("live") == ALICE
    assert cache.get("expired") is None
    assert cache.get("never seen") is None
    assert len(cache) == 1


def test_the_oldest_entry_goes_when_full() -> None:
    cache = VerifiedTokens(3)
    for number in range(5):
        cache.put(f"token-{number}", ALICE, time.time() + 60)
    assert len(cache) == 3
    assert cache.get("token-0") is None
    assert cache.get("token-1") is None
    assert cache.get("token-4") == ALICE
