"""Idempotency keys and replays, as pure domain code."""

from __future__ import annotations

import hashlib

import pytest

from {{ cookiecutter.package_name }}.domain.idempotency import (
    KEY_MAX_LENGTH,
    IdempotencyKey,
    IdempotencyKeyInvalidError,
    IdempotencyKeyMissingError,
    IdempotencyKeyReusedError,
    IdempotencyRecord,
    StoredResponse,
    fingerprint,
    replay,
)


@pytest.mark.parametrize(
    "header",
    [
        "8e03978e-40d5-43e8-bc93-6894a57f9324",
        "k",
        '"quoted as the draft shows"',
        "inner spaces are fine",
        "~" * KEY_MAX_LENGTH,
    ],
)
def test_printable_ascii_keys_up_to_255_characters_are_accepted(header: str) -> None:
    assert IdempotencyKey.parse(header).value == header


@pytest.mark.parametrize("header", [None, ""])
def test_a_missing_key_is_its_own_error(header: str | None) -> None:
    with pytest.raises(IdempotencyKeyMissingError):
        IdempotencyKey.parse(header)


@pytest.mark.parametrize(
    "header",
    ["k" * (KEY_MAX_LENGTH + 1), " leading", "trailing ", "tab\there", "ключ", "bell\x07"],
    ids=["too-long", "leading-space", "trailing-space", "tab", "non-ascii", "control"],
)
def test_malformed_keys_are_refused(header: str) -> None:
    with pytest.raises(IdempotencyKeyInvalidError, match="1 to 255 printable ASCII"):
        IdempotencyKey.parse(header)


def test_the_fingerprint_ignores_spelling_but_not_content() -> None:
    one = fingerprint({"from_account_id": 1, "to_account_id": 2, "amount_minor": 300})
    same = fingerprint({"amount_minor": 300, "to_account_id": 2, "from_account_id": 1})
    other = fingerprint({"from_account_id": 1, "to_account_id": 2, "amount_minor": 301})
    assert one == same
    assert one != other
    assert len(one) == 32


def test_the_fingerprint_is_the_sha256_of_the_sorted_compact_json() -> None:
    """The bytes keys stored by earlier versions were fingerprinted from: a change of
    serializer must keep them, or a retry across an upgrade would be refused as reused."""
    canonical = b'{"amount_minor":300,"from_account_id":1,"to_account_id":2}'
    payload = {"to_account_id": 2, "amount_minor": 300, "from_account_id": 1}
    assert fingerprint(payload) == hashlib.sha256(canonical).digest()


def test_the_same_request_replays_the_stored_response() -> None:
    stored = StoredResponse(201, "application/json", b'{"id":7}', "/v1/transfers/7")
    record = IdempotencyRecord(fingerprint({"amount_minor": 1}), stored)
    result = replay(record, fingerprint({"amount_minor": 1}))
    assert result.replayed
    assert result.response == stored


def test_another_request_with_the_same_key_is_refused() -> None:
    stored = StoredResponse(201, "application/json", b"{}")
    record = IdempotencyRecord(fingerprint({"amount_minor": 1}), stored)
    with pytest.raises(IdempotencyKeyReusedError, match="different request body"):
        replay(record, fingerprint({"amount_minor": 2}))
