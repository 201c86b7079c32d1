"""PyJWT with its base64url segment check in C: the same tokens accepted, faster.

PyJWT 2.15 checks each byte of each segment against the alphabet in a Python
generator, then re-encodes the segment to refuse non-canonical ones: for an RS256
token (about 700 bytes) that was half of `jwt.decode`'s CPU time, more than the RSA
signature check itself (profiled with cProfile and callgrind; README, "Authentication's
cost"). A few bytes methods accept exactly the segments PyJWT accepts
(tests/unit/test_token_decoder.py compares both over hostile segments), then binascii
decodes.

`decode_under_known_header` is hand-written: PyJWT's general `decode` (options merged,
the header parsed and checked again, each claim check a method call) was about 0.22 M
instructions of Python per verification, two thirds of what the RSA signature itself
costs. It is only used for a token whose header segment is byte-identical to one
`TokenDecoder.decode_token` accepted with the same key: every check PyJWT makes on the header
(kid, crit, b64, the algorithm allowed and the key's) is a function of those bytes and
that key, so it passed again. What is left is PyJWT's own signature check and the claim
checks PyJWT makes with our options, in its order and with its exception types;
tests/unit/test_token_decoder.py compares both over hostile tokens.

This overrides PyJWT's private `PyJWS._decode_base64url_segment` in subclasses this
module owns (no library global is touched): pyproject.toml pins PyJWT to the 2.x
releases from 2.15.1 (2.15.0 refused the '=' padding accepted here), and the
comparison test fails if a release renames or changes it.
"""

from __future__ import annotations

import binascii
import json
import time
from typing import Any

import jwt
from jwt.exceptions import InvalidJTIError, InvalidSubjectError

# The claims every token must hold (PyJWT's options={"require": ...}).
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
# By the characters left after whole quartets: the '=' counts allowed, the last
# character's values with its unused low bits zero (4 bits after 2 characters, 2
# after 3), and the padding that makes whole quartets. 1 character is never valid.
_TAILS: dict[int, tuple[tuple[int, ...], bytes, bytes]] = {
    0: ((0,), b"", b""),
    2: ((0, 2), b"AQgw", b"=="),
    3: ((0, 1), b"AEIMQUYcgkosw048", b"="),
}


class CompiledSegmentJWS(jwt.PyJWS):
    """PyJWS whose segment check runs in C (bytes methods), with PyJWT's acceptance."""

    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        # Canonical base64url, as PyJWS._decode_base64url_segment accepts it. A
        # compiled regular expression did this at about 50 instructions a byte (0.05 M
        # of a miss, counted); these passes over the bytes are a few each.
        data = segment.rstrip(b"=")
        tail = _TAILS.get(len(data) % 4)
        if (
            tail is None
            or len(segment) - len(data) not in tail[0]
            or data.translate(None, _ALPHABET)  # what is left is outside the alphabet
            or (tail[1] and data[-1] not in tail[1])
        ):
            raise jwt.DecodeError(f"Invalid {name} padding")
        return binascii.a2b_base64(data.translate(_TO_STANDARD) + tail[2])


class TokenDecoder(jwt.PyJWT):
    """jwt.PyJWT over CompiledSegmentJWS: decode() checks signature and claims as
    jwt.decode does; get_unverified_header() reads the header as jwt's does."""

    def __init__(self) -> None:
        super().__init__()
        self._jws = CompiledSegmentJWS(options=self._get_sig_options())

    def get_unverified_header(self, token: str) -> dict[str, object]:
        return self._jws.get_unverified_header(token)

    def decode_token(
        self, token: str, key: jwt.PyJWK, *, audience: str, issuer: str, leeway: float
    ) -> dict[str, Any]:
        """decode() with the verifier's checks: the key's algorithm only, the claims
        REQUIRED_CLAIMS, `aud`, `iss`, and the times with `leeway`."""
        return self.decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": list(REQUIRED_CLAIMS)},
        )


def decode_under_known_header(
    token: str, key: jwt.PyJWK, *, audience: str, issuer: str, leeway: float
) -> dict[str, Any]:
    """What TokenDecoder.decode_token returns or raises for `token`, given that a token
    with the same header segment passed decode_token with `key`."""
    signing_input, _, crypto_segment = token.encode().rpartition(b".")
    _, dot, payload_segment = signing_input.partition(b".")
    if not dot:
        raise jwt.DecodeError("Not enough segments")
    payload_data = CompiledSegmentJWS._decode_base64url_segment(payload_segment, "payload")
    signature = CompiledSegmentJWS._decode_base64url_segment(crypto_segment, "crypto")
    # PyJWT's own check (prepare_key already ran on this key object, once, in PyJWK).
    if not key.Algorithm.verify(signing_input, key.key, signature):
        raise jwt.InvalidSignatureError("Signature verification failed")
    try:
        payload = json.loads(payload_data)  # bytes, as PyJWT: UTF-16/32 detected alike
    except (ValueError, RecursionError) as error:
        raise jwt.DecodeError(f"Invalid payload string: {error}") from error
    if not isinstance(payload, dict):
        raise jwt.DecodeError("Invalid payload string: must be a json object")
    _check_claims(payload, audience, issuer, leeway)
    return payload


def _check_claims(payload: dict[str, Any], audience: str, issuer: str, leeway: float) -> None:
    """PyJWT 2.15's _validate_claims with every verify_* option on, strict_aud off, a
    string audience and issuer: the same order, conversions and exception types."""
    for claim in REQUIRED_CLAIMS:
        if payload.get(claim) is None:
            raise jwt.MissingRequiredClaimError(claim)
    _check_times(payload, time.time(), leeway)
    iss = payload["iss"]
    if not isinstance(iss, str):
        raise jwt.InvalidIssuerError("Payload Issuer (iss) must be a string")
    if iss != issuer:
        raise jwt.InvalidIssuerError("Invalid issuer")
    audiences = payload["aud"]
    if not audiences:  # "", [] or 0: present, yet PyJWT counts it missing
        raise jwt.MissingRequiredClaimError("aud")
    if isinstance(audiences, str):
        audiences = [audiences]
    if not isinstance(audiences, list) or any(not isinstance(a, str) for a in audiences):
        raise jwt.InvalidAudienceError("Invalid claim format in token")
    if audience not in audiences:
        raise jwt.InvalidAudienceError("Audience doesn't match")
    if not isinstance(payload["sub"], str):
        raise InvalidSubjectError("Subject must be a string")
    if "jti" in payload and not isinstance(payload["jti"], str):
        raise InvalidJTIError("JWT ID must be a string")


def _check_times(payload: dict[str, Any], now: float, leeway: float) -> None:
    """`iat`, then `nbf` if present, then `exp`, as PyJWT's _validate_iat/nbf/exp."""
    iat = _integer(payload["iat"], jwt.InvalidIssuedAtError, "Issued At claim (iat)")
    if iat > now + leeway:
        raise jwt.ImmatureSignatureError("The token is not yet valid (iat)")
    if "nbf" in payload:
        nbf = _integer(payload["nbf"], jwt.DecodeError, "Not Before claim (nbf)")
        if nbf > now + leeway:
            raise jwt.ImmatureSignatureError("The token is not yet valid (nbf)")
    exp = _integer(payload["exp"], jwt.DecodeError, "Expiration Time claim (exp)")
    if exp <= now - leeway:
        raise jwt.ExpiredSignatureError("Signature has expired")


def _integer(value: Any, error: type[jwt.PyJWTError], claim: str) -> int:
    """int(value), as PyJWT converts a time claim (a huge int such as 10**400 stays an
    int: compared with a float, it does not overflow), or `error` with PyJWT's message."""
    try:
        return int(value)
    except (ValueError, TypeError, OverflowError):
        raise error(f"{claim} must be an integer.") from None
