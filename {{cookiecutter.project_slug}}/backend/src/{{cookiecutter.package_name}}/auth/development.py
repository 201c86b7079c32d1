"""The development key: tokens for `make token` and the tests, without an identity
provider. Only the local and test environments trust it (configuration.py refuses
auth.development_key in production): its private half is derived from a public
seed, so anyone can sign with it."""

from __future__ import annotations

import hashlib
import time

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DEVELOPMENT_ISSUER = "urn:{{ cookiecutter.project_slug }}:development"
DEVELOPMENT_KEY_ID = "development"
DEVELOPMENT_ALGORITHM = "EdDSA"
_SEED = hashlib.sha256(b"{{ cookiecutter.project_slug }} development signing key").digest()


def _private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_SEED)


def development_keys() -> dict[str, jwt.PyJWK]:
    """The public half, as the key set a verifier trusts."""
    public = jwt.algorithms.OKPAlgorithm.to_jwk(_private_key().public_key(), as_dict=True)
    return {DEVELOPMENT_KEY_ID: jwt.PyJWK({**public, "kid": DEVELOPMENT_KEY_ID})}


def mint(subject: str, scopes: str, audience: str, lifetime_seconds: int = 3600) -> str:
    """A token for `subject` with `scopes` (space-separated), signed by the development key."""
    now = int(time.time())
    claims = {
        "iss": DEVELOPMENT_ISSUER,
        "aud": audience,
        "sub": subject,
        "scope": scopes,
        "iat": now,
        "exp": now + lifetime_seconds,
    }
    headers = {"kid": DEVELOPMENT_KEY_ID}
    return jwt.encode(claims, _private_key(), algorithm=DEVELOPMENT_ALGORITHM, headers=headers)
