"""Idempotency keys, with the semantics of the IETF httpapi Idempotency-Key draft:
a retried request with the same key and the same payload gets the first response
again, and nothing happens twice."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from .errors import DomainError

KEY_MAX_LENGTH = 255
# Printable ASCII, starting and ending with a visible character (HTTP trims the
# spaces around a header value). A draft-style quoted key ("…") fits as well.
KEY_PATTERN = r"^[!-~]([ -~]*[!-~])?$"
_KEY = re.compile(KEY_PATTERN)


class IdempotencyError(DomainError):
    pass


class IdempotencyKeyMissingError(IdempotencyError):
    def __init__(self) -> None:
        super().__init__("this operation requires an Idempotency-Key header")


class IdempotencyKeyInvalidError(IdempotencyError):
    def __init__(self) -> None:
        super().__init__(
            f"an Idempotency-Key is 1 to {KEY_MAX_LENGTH} printable ASCII characters "
            "(a UUID is a good choice)"
        )


class IdempotencyKeyInUseError(IdempotencyError):
    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still being processed")


class IdempotencyKeyReusedError(IdempotencyError):
    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was already used with a different request body")


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    value: str

    @classmethod
    def parse(cls, header: str | None) -> IdempotencyKey:
        if not header:
            raise IdempotencyKeyMissingError
        if len(header) > KEY_MAX_LENGTH or not _KEY.fullmatch(header):
            raise IdempotencyKeyInvalidError
        return cls(header)


def fingerprint(payload: Mapping[str, object]) -> bytes:
    """SHA-256 of the payload's canonical JSON: the same request however it was
    spelled (key order, spacing) has the same fingerprint.

    orjson, not json.dumps, which builds a JSONEncoder per call with these options
    (28,000 instructions of a transfer's 1.37 million, callgrind). For the transfer's
    integers it writes the bytes json.dumps(sort_keys=True, separators=(",", ":"))
    did, so keys stored before stay valid (test_idempotency_rules.py holds them)."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).digest()


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The first response to a key, kept byte for byte to be replayed."""

    status: int
    content_type: str
    body: bytes
    location: str | None = None


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    fingerprint: bytes
    response: StoredResponse


@dataclass(frozen=True, slots=True)
class IdempotentResult:
    response: StoredResponse
    replayed: bool


def replay(record: IdempotencyRecord, request_fingerprint: bytes) -> IdempotentResult:
    """The stored response, if the key is used again for the same request."""
    if record.fingerprint != request_fingerprint:
        raise IdempotencyKeyReusedError
    return IdempotentResult(record.response, replayed=True)
