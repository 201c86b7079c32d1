"""The decoder's hand-written parts against PyJWT, the oracle (a PyJWT release that
changes what it accepts fails here): the segment check accepts exactly the segments
PyJWT's own accepts and decodes them to the same bytes, over hostile segments (padding,
'=' counts, bytes outside the alphabet, non-canonical last characters, lengths % 4 == 1,
empty); decode_under_known_header returns or raises what TokenDecoder.decode_token
(PyJWT's decode) does, over hostile tokens under an accepted header."""

from __future__ import annotations

import base64
import itertools
import json
import math
import random
import string
import time
from collections.abc import Callable, Iterator
from functools import cache, partial
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.auth.decoder import (
    REQUIRED_CLAIMS,
    CompiledSegmentJWS,
    TokenDecoder,
    decode_under_known_header,
)

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
    """A forged token's junk last byte must not cost more than a valid segment (with a
    regular expression that backtracked through every quartet, 64 KB took 5x the
    time); the Authorization header's limit bounds the length."""
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


AUDIENCE, ISSUER, LEEWAY = "api", "https://issuer", 30
NOW = int(time.time())
VALID = {"sub": "alice", "aud": AUDIENCE, "iss": ISSUER, "iat": NOW - 60, "exp": NOW + 3600}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hostile_claims() -> Iterator[Any]:
    """Payloads: each claim missing, null, mistyped, out of time or not ours."""
    yield VALID
    yield {**VALID, "scope": "a b", "jti": "j", "nbf": NOW - 10, "extra": {"x": [1]}}
    for claim in VALID:
        yield {name: value for name, value in VALID.items() if name != claim}
        yield {**VALID, claim: None}
    odd: list[object] = ["", "123", "12.5", "abc", 12.5, True, False, 0, [], {}, [1], 10**30]
    for claim in ("iat", "nbf", "exp"):
        for value in odd:
            yield {**VALID, claim: value}
    cases: dict[str, list[object]] = {
        "iat": [NOW + 3600, NOW + LEEWAY - 100, str(NOW)],
        "nbf": [NOW + 3600, NOW + LEEWAY - 100, NOW - 10],
        "exp": [NOW - 3600, NOW - LEEWAY + 100, float(NOW + 60), str(NOW + 60)],
        "iss": [ISSUER + "/", "", 1, [ISSUER], {"a": ISSUER}],
        "aud": ["", [], 0, False, "other", [AUDIENCE], ["x", AUDIENCE], [AUDIENCE, 1], {"a": 1}, 7],
        "sub": [1, "", ["alice"], {}, True],
        "jti": [1, "", None, [], "x"],
    }
    for claim, values in cases.items():
        for value in values:
            yield {**VALID, claim: value}
    yield [VALID]
    yield "a string"
    yield 7


def _payload_segments() -> Iterator[str]:
    for claims in _hostile_claims():
        yield _b64(json.dumps(claims).encode())
    encoded = json.dumps(VALID)
    yield _b64(encoded.encode("utf-16"))  # json.loads of bytes detects the encoding
    yield _b64(encoded.encode("utf-32-le"))
    yield _b64(b"\xef\xbb\xbf" + encoded.encode())  # a UTF-8 byte order mark
    yield _b64(encoded[:-1].encode())
    yield _b64(b"[" * 100_000)  # RecursionError in the parser
    yield _b64(b"\xff\xfe\x00")
    yield ""


def _tokens(header: str, sign: Callable[[bytes], bytes]) -> Iterator[str]:
    """Each payload signed under `header`, then spellings of a valid token that differ
    in its segments, its dots or its signature."""
    for payload in _payload_segments():
        signing_input = f"{header}.{payload}"
        yield f"{signing_input}.{_b64(sign(signing_input.encode()))}"
    payload = _b64(json.dumps(VALID).encode())
    signing_input = f"{header}.{payload}"
    signature = _b64(sign(signing_input.encode()))
    other = _b64(sign(f"{header}.{_b64(b'{}')}".encode()))
    yield f"{signing_input}.{other}"  # another message's signature
    yield f"{signing_input}."
    yield f"{signing_input}.{signature[:-4]}"
    yield f"{signing_input}.{signature}="
    yield f"{signing_input}.{signature}!"
    yield signing_input + "={}." + signature
    yield f"{signing_input}.{signature}.{signature}"
    yield f"{header}.{signature}"
    yield f"{header}..{signature}"
    yield f"{header}"
    yield f"{header}.{payload}é.{signature}"
    yield f"{header}.{payload} .{signature}"
    last = signature[-1]
    for replacement in string.ascii_letters + string.digits + "-_":
        if replacement != last:  # non-canonical spellings of the same bytes among them
            yield f"{signing_input}.{signature[:-1]}{replacement}"


def _decoded(decode: Callable[[], dict[str, Any]]) -> object:
    try:
        return decode()
    except jwt.PyJWTError as error:
        return (type(error), str(error))


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_decode_under_known_header_answers_as_pyjwt(algorithm: str) -> None:
    private: Any = {
        "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate,
    }[algorithm]()
    algorithm_object: Any = jwt.get_algorithm_by_name(algorithm)
    jwk = algorithm_object.to_jwk(private.public_key(), as_dict=True)
    key = jwt.PyJWK({**jwk, "kid": "k", "alg": algorithm})
    header = _b64(json.dumps({"alg": algorithm, "kid": "k", "typ": "JWT"}).encode())
    decoder = TokenDecoder()
    checks: dict[str, Any] = {"audience": AUDIENCE, "issuer": ISSUER, "leeway": LEEWAY}
    outcomes: dict[str, int] = {}
    for token in _tokens(header, lambda message: algorithm_object.sign(message, private)):
        expected = _decoded(partial(decoder.decode_token, token, key, **checks))
        assert _decoded(partial(decode_under_known_header, token, key, **checks)) == expected, token
        name = "accepted" if isinstance(expected, dict) else expected[0].__name__  # type: ignore[index]
        outcomes[name] = outcomes.get(name, 0) + 1
    # The comparison covered acceptances and every kind of refusal the checks make.
    assert outcomes["accepted"] >= 8, outcomes
    assert {
        "DecodeError",
        "InvalidSignatureError",
        "MissingRequiredClaimError",
        "InvalidIssuedAtError",
        "ImmatureSignatureError",
        "ExpiredSignatureError",
        "InvalidIssuerError",
        "InvalidAudienceError",
        "InvalidSubjectError",
        "InvalidJTIError",
    } <= outcomes.keys(), outcomes


# The fuzz test below: hypothesis draws the claims and mutations of a signed token,
# and jwt.decode itself (not TokenDecoder) is the oracle. Time claims stay minutes
# from every boundary the checks compare them with, so that the second that passes
# between the two decodes cannot make them disagree.
_FAR_FROM_NOW = st.sampled_from([-86_400, -3600, -LEEWAY - 120, LEEWAY + 120, 3600, 86_400])
_TIME_VALUES = st.one_of(
    _FAR_FROM_NOW.map(lambda offset: NOW + offset),
    _FAR_FROM_NOW.map(lambda offset: float(NOW + offset)),
    _FAR_FROM_NOW.map(lambda offset: str(NOW + offset)),
    st.integers().filter(lambda value: abs(value - NOW) > 600),
    # int() raises OverflowError on the infinities, ValueError on NaN (JSON's Infinity, NaN).
    st.sampled_from([10**400, -(10**400), math.inf, -math.inf, math.nan]),
)
_ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.lists(st.one_of(st.text(max_size=4), st.integers()), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_CLAIM_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "sub": st.one_of(st.just("alice"), _ODD_VALUES),
    "aud": st.one_of(
        st.sampled_from([AUDIENCE, [AUDIENCE], ["x", AUDIENCE], "other"]), _ODD_VALUES
    ),
    "iss": st.one_of(st.sampled_from([ISSUER, ISSUER + "/"]), _ODD_VALUES),
    "iat": st.one_of(_TIME_VALUES, _ODD_VALUES),
    "nbf": st.one_of(_TIME_VALUES, _ODD_VALUES),
    "exp": st.one_of(_TIME_VALUES, _ODD_VALUES),
    "jti": st.one_of(st.just("j"), _ODD_VALUES),
}


@st.composite
def _claims(draw: st.DrawFn) -> Any:
    """Each claim kept valid, dropped or replaced (the required ones usually valid, so
    that the later checks are reached), now and then a payload that is not an object."""
    claims: dict[str, Any] = {}
    for claim, values in _CLAIM_VALUES.items():
        usual = claim in REQUIRED_CLAIMS and draw(st.integers(0, 3)) > 0
        if usual:
            claims[claim] = VALID[claim]
        elif draw(st.booleans()):
            claims[claim] = draw(values)
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(st.just([claims]), _ODD_VALUES))
    return claims


# Characters a mutation writes: base64url's, its padding, the dot, and junk.
_MUTATION_CHARACTERS = st.sampled_from(list(string.ascii_letters + string.digits + "-_=.+/! é\x00"))
# Half the tokens unmutated: a mutated token almost always stops at its segments or
# signature, and the claims' checks need examples that get past them.
_MUTATIONS: st.SearchStrategy[list[tuple[str, float, str]]] = st.one_of(
    st.just([]),
    st.lists(
        st.tuples(
            st.sampled_from(["replace", "insert", "delete", "truncate"]),
            st.floats(0, 1, exclude_max=True),
            _MUTATION_CHARACTERS,
        ),
        min_size=1,
        max_size=3,
    ),
)


def _mutated(token: str, header_length: int, mutations: list[tuple[str, float, str]]) -> str:
    """`token` with each mutation at a position after its header and first dot: the
    header stays the accepted one, the only case decode_under_known_header serves."""
    fixed, rest = token[: header_length + 1], token[header_length + 1 :]
    for kind, where, character in mutations:
        position = int(where * (len(rest) + 1))
        if kind == "replace" and position < len(rest):
            rest = rest[:position] + character + rest[position + 1 :]
        elif kind == "insert":
            rest = rest[:position] + character + rest[position:]
        elif kind == "delete":
            rest = rest[:position] + rest[position + 1 :]
        elif kind == "truncate":
            rest = rest[:position]
    return fixed + rest


@cache
def _signing_key(algorithm: str) -> tuple[Any, jwt.PyJWK]:
    private: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    jwk = jwt.get_algorithm_by_name(algorithm).to_jwk(private.public_key(), as_dict=True)
    return private, jwt.PyJWK({**jwk, "kid": "k", "alg": algorithm})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    algorithm=st.sampled_from(["RS256", "EdDSA"]),
    claims=_claims(),
    mutations=_MUTATIONS,
)
# Claims each check's refusal depends on, tried on every run: the drawn examples
# reach them only now and then.
@example(algorithm="EdDSA", claims={**VALID, "exp": math.inf}, mutations=[])
@example(algorithm="EdDSA", claims={**VALID, "nbf": math.nan}, mutations=[])
@example(algorithm="EdDSA", claims={**VALID, "iss": 1}, mutations=[])
@example(algorithm="EdDSA", claims={**VALID, "aud": [AUDIENCE, 1]}, mutations=[])
@example(algorithm="EdDSA", claims={**VALID, "sub": 7}, mutations=[])
def test_decode_under_known_header_answers_as_jwt_decode_on_mutated_tokens(
    algorithm: str, claims: Any, mutations: list[tuple[str, float, str]]
) -> None:
    """Property: for any payload signed under an accepted header, then mutated after
    the header, decode_under_known_header returns the claims jwt.decode returns, or
    raises the exception (type and message) it raises."""
    private, key = _signing_key(algorithm)
    header = _b64(json.dumps({"alg": algorithm, "kid": "k", "typ": "JWT"}).encode())
    signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
    signature = jwt.get_algorithm_by_name(algorithm).sign(signing_input.encode(), private)
    token = _mutated(f"{signing_input}.{_b64(signature)}", len(header), mutations)
    expected = _decoded(
        partial(
            jwt.decode,
            token,
            key.key,
            algorithms=[algorithm],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    )
    decoded = _decoded(
        partial(
            decode_under_known_header, token, key, audience=AUDIENCE, issuer=ISSUER, leeway=LEEWAY
        )
    )
    assert decoded == expected, token
