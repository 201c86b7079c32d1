"""The reason the verifier logs for a refused token names the check that failed: a
token PyJWT cannot parse is "malformed", whichever path (a new header, or one already
accepted) read it. A token PyJWT accepts is never an error out of the verifier."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from {{ cookiecutter.package_name }}.auth.errors import InvalidTokenError
from {{ cookiecutter.package_name }}.auth.jwks import KeySet
from {{ cookiecutter.package_name }}.auth.token_cache import VerifiedTokens
from {{ cookiecutter.package_name }}.auth.tokens import TokenVerifier

PRIVATE = ed25519.Ed25519PrivateKey.generate()
JWK = jwt.algorithms.OKPAlgorithm.to_jwk(PRIVATE.public_key(), as_dict=True)
KEY = jwt.PyJWK({**JWK, "kid": "k", "alg": "EdDSA"})
CLAIMS = {"sub": "alice", "aud": "api", "iss": "https://issuer", "iat": 0, "exp": 2**33}


def _verifier() -> TokenVerifier:
    return TokenVerifier(
        KeySet.static({"k": KEY}),
        issuer="https://issuer",
        audience="api",
        algorithms=["EdDSA"],
        leeway_seconds=30,
        scopes_claim="scope",
        cache=VerifiedTokens(10),
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _reason(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidTokenError) as refused:
        await verifier.verify(token)
    return refused.value.reason


@pytest.mark.anyio
async def test_an_unparsable_token_is_malformed_not_invalid_claims() -> None:
    verifier = _verifier()
    # RFC 7797's unencoded payload: PyJWT raises DecodeError (it needs the payload
    # detached), which was logged as "invalid claims".
    header = _b64(json.dumps({"alg": "EdDSA", "kid": "k", "b64": False, "crit": ["b64"]}).encode())
    signature = _b64(PRIVATE.sign(f"{header}.".encode()))
    assert await _reason(verifier, f"{header}..{signature}") == "malformed"
    valid = jwt.encode(CLAIMS, PRIVATE, algorithm="EdDSA", headers={"kid": "k"})
    assert (await verifier.verify(valid)).subject == "alice"  # its header now known
    known_header, payload, signature = valid.split(".")
    assert await _reason(verifier, f"{known_header}.{payload}!.{signature}") == "malformed"
    assert await _reason(verifier, f"{known_header}.{payload}") == "malformed"
    not_json = f"{known_header}.{_b64(b'not json')}"
    not_json += "." + _b64(PRIVATE.sign(not_json.encode()))
    assert await _reason(verifier, not_json) == "malformed"


@pytest.mark.anyio
async def test_a_failed_claim_check_is_named_on_either_path() -> None:
    verifier = _verifier()
    expired = {**CLAIMS, "exp": int(time.time()) - 3600}
    for _ in range(2):  # the first reads a new header, the second a known one
        token = jwt.encode(expired, PRIVATE, algorithm="EdDSA", headers={"kid": "k"})
        assert await _reason(verifier, token) == "expired"
        valid = jwt.encode(CLAIMS, PRIVATE, algorithm="EdDSA", headers={"kid": "k"})
        await verifier.verify(valid)
    forged = jwt.encode(CLAIMS, ed25519.Ed25519PrivateKey.generate(), "EdDSA", {"kid": "k"})
    assert await _reason(verifier, forged) == "bad signature"


@pytest.mark.anyio
async def test_an_exp_past_the_float_range_is_kept_not_a_500() -> None:
    """PyJWT accepts any `exp` int() takes; float() overflowed on 10**400 (the cache's
    expiry), an OverflowError out of the verifier, a 500."""
    verifier = _verifier()
    for path in ("new header", "known header"):
        claims = {**CLAIMS, "exp": 10**400, "jti": path}  # two tokens, the same header
        token = jwt.encode(claims, PRIVATE, algorithm="EdDSA", headers={"kid": "k"})
        assert (await verifier.verify(token)).subject == "alice"
        assert (await verifier.verify(token)).subject == "alice"  # from the cache
