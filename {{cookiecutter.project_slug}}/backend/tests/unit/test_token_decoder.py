"""The compiled segment check accepts exactly the segments PyJWT's own accepts, and
decodes them to the same bytes: compared over hostile segments (padding, '=' counts,
bytes outside the alphabet, non-canonical last characters, lengths % 4 == 1, empty).
PyJWT's method is the oracle, so a PyJWT release that changes it fails here."""

from __future__ import annotations

import itertools
import random
import string
import time
from collections.abc import Callable, Iterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from {{ cookiecutter.package_name }}.auth.decoder import CompiledSegmentJWS, TokenDecoder

ALPHABET = (string.ascii_letters + string.digits + "-_").encode()
# Alphabet characters with and without unused low bits, and every kind of junk.
HOSTILE_BYTES = b"AQgwBE_-" + b"=+/!. \n\r\t\x00\x80\xff"


def _segments() -> Iterator[bytes]:
    for length in range(5):
        for combination in itertools.product(HOSTILE_BYTES, repeat=length):
            yield bytes(combination)
    # Every last character after 1 and 2 characters (4 and 2 unused bits), after
    # whole quartets, with 0 to 3 '='.
    for prefix, middle, last, padding in itertools.product(
        (b"", b"AAAA", b"ab-_cd01"), (b"", b"Q", b"Qw"), ALPHABET, (b"", b"=", b"==", b"===")
    ):
        yield prefix + middle + bytes([last]) + padding
    generator = random.Random(14)  # noqa: S311 - reproducible test input, not a secret
    for _ in range(20_000):
        length = generator.randrange(0, 48)
        yield bytes(generator.choice(ALPHABET + b"= \n+/") for _ in range(length))


def _outcome(check: Callable[[bytes, str], bytes], segment: bytes) -> bytes | str:
    try:
        return check(segment, "payload")
    except jwt.DecodeError as error:
        return f"DecodeError: {error}"


def test_the_compiled_check_accepts_exactly_what_pyjwt_accepts() -> None:
    library = jwt.PyJWS._decode_base64url_segment
    compiled = CompiledSegmentJWS._decode_base64url_segment
    accepted = 0
    for segment in _segments():
        expected = _outcome(library, segment)
        assert _outcome(compiled, segment) == expected, segment
        accepted += isinstance(expected, bytes)
    assert accepted > 1000  # the comparison covered accepted segments, not only refusals


def _best_seconds(segment: bytes) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        _outcome(CompiledSegmentJWS._decode_base64url_segment, segment)
        best = min(best, time.process_time() - start)
    return best


def test_refusing_a_long_segment_costs_no_more_than_accepting_it() -> None:
    """A forged token's junk last byte must not make the check backtrack through
    every quartet (64 KB: 5x the time of a valid segment before the quartets were
    matched possessively); the Authorization header's limit bounds the length."""
    valid, junk_at_end = b"A" * 65536, b"A" * 65536 + b"!"
    ratios = [_best_seconds(junk_at_end) / _best_seconds(valid) for _ in range(3)]
    assert min(ratios) < 2, ratios


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
def test_the_decoder_decodes_as_jwt_decode(algorithm: str) -> None:
    private = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    claims = {"sub": "alice", "aud": "api", "iss": "https://issuer", "iat": 0, "exp": 2**33}
    token = jwt.encode(claims, private, algorithm=algorithm, headers={"kid": "k"})
    decoder = TokenDecoder()
    assert decoder.get_unverified_header(token) == jwt.get_unverified_header(token)
    for audience in ("api", "other"):
        try:
            expected: object = jwt.decode(
                token, private.public_key(), [algorithm], audience=audience, issuer="https://issuer"
            )
        except jwt.PyJWTError as error:
            expected = type(error)
        try:
            decoded: object = decoder.decode(
                token, private.public_key(), [algorithm], audience=audience, issuer="https://issuer"
            )
        except jwt.PyJWTError as error:
            decoded = type(error)
        assert decoded == expected
    assert expected is jwt.InvalidAudienceError  # the claims are still checked
