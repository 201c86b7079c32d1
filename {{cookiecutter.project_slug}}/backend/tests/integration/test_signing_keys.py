"""Tokens from a real identity provider's endpoints (support/identity_provider.py):
discovery, key rotation, the provider down, a flood of made-up key ids, and hostile
tokens and key sets. Each is a 401 or a refused startup, never a 500, and the
service keeps serving."""

from __future__ import annotations

import asyncio
import base64
import json
import string
import uuid
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from prometheus_client import REGISTRY

from {{ cookiecutter.package_name }}.auth.decoder import TokenDecoder
from {{ cookiecutter.package_name }}.auth.errors import KeySetError
from {{ cookiecutter.package_name }}.configuration import Settings

from ..support.apps import serving
from ..support.identity_provider import IdentityProvider, SigningKey, identity_provider

pytestmark = pytest.mark.anyio
PROTECTED = "/v1/me"


@pytest.fixture
def provider() -> Iterator[IdentityProvider]:
    with identity_provider() as running:
        yield running


@pytest.fixture
def provider_settings(settings: Settings, provider: IdentityProvider) -> Settings:
    auth = settings.auth.model_copy(update={"issuer": provider.issuer, "development_key": False})
    return settings.model_copy(update={"auth": auth})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


B64_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_rotation_is_picked_up_with_one_fetch(
    provider: IdentityProvider, provider_settings: Settings
) -> None:
    audience = provider_settings.auth.audience
    async with serving(provider_settings) as (_, client):
        first = await client.get(PROTECTED, headers=bearer(provider.token(audience)))
        assert first.status_code == 200, first.text
        assert provider.jwks_fetches == 1
        new_key = provider.rotate()
        for subject in ("alice", "bob", "carol"):
            token = provider.token(audience, subject, key=new_key)
            response = await client.get(PROTECTED, headers=bearer(token))
            assert response.status_code == 200, response.text
        assert provider.jwks_fetches == 2


async def test_a_flood_of_unknown_key_ids_fetches_at_most_once_per_interval(
    provider: IdentityProvider, provider_settings: Settings
) -> None:
    audience = provider_settings.auth.audience
    async with serving(provider_settings) as (_, client):
        made_up = [provider.token(audience, key=SigningKey(uuid.uuid4().hex)) for _ in range(50)]
        answers = await asyncio.gather(*(client.get(PROTECTED, headers=bearer(t)) for t in made_up))
        assert {answer.status_code for answer in answers} == {401}
        assert provider.jwks_fetches == 2  # startup, then one for the whole flood
        real = await client.get(PROTECTED, headers=bearer(provider.token(audience)))
        assert real.status_code == 200


async def test_a_key_removed_from_the_set_verifies_no_new_token(
    provider: IdentityProvider, provider_settings: Settings
) -> None:
    """Each header's key is remembered (a miss parses the token once), but only for
    the key set it came from: once the provider drops the key, a new token with the
    very same header is refused."""
    audience = provider_settings.auth.audience
    old_key = provider.keys[0]
    async with serving(provider_settings) as (app, client):
        first = provider.token(audience, "frank")
        assert (await client.get(PROTECTED, headers=bearer(first))).status_code == 200
        provider.keys = [SigningKey(uuid.uuid4().hex)]
        await app.state.authentication.tokens.keys.refresh()
        later = provider.token(audience, "frank", key=old_key, lifetime_seconds=301)
        assert later.partition(".")[0] == first.partition(".")[0]
        assert (await client.get(PROTECTED, headers=bearer(later))).status_code == 401


async def test_forged_headers_do_not_displace_a_real_headers_key(
    provider: IdentityProvider, provider_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a verified token's header is remembered: a flood of distinct headers naming
    the provider's key id, signed by another key, leaves the real header's key in
    place (a new real token's header is not parsed again)."""
    parses = 0
    # The verifier parses a header with its TokenDecoder: jwt.get_unverified_header
    # is never called, so counting that would pass with no header remembered at all.
    parse = TokenDecoder.get_unverified_header

    def counted(decoder: TokenDecoder, token: str) -> dict[str, object]:
        nonlocal parses
        parses += 1
        return parse(decoder, token)

    monkeypatch.setattr(TokenDecoder, "get_unverified_header", counted)
    audience = provider_settings.auth.audience
    real = provider.keys[0]
    rogue = SigningKey(real.kid)
    async with serving(provider_settings) as (_, client):
        first = await client.get(PROTECTED, headers=bearer(provider.token(audience)))
        assert first.status_code == 200
        assert parses == 1
        for number in range(100):
            headers = {"kid": real.kid, "n": number}
            forged = jwt.encode({"sub": "mallory"}, rogue.private, "ES256", headers=headers)
            assert (await client.get(PROTECTED, headers=bearer(forged))).status_code == 401
        parses = 0
        later = provider.token(audience, "alice", lifetime_seconds=301)
        assert (await client.get(PROTECTED, headers=bearer(later))).status_code == 200
        assert parses == 0


async def test_the_provider_down_keeps_cached_keys_working(
    provider: IdentityProvider, provider_settings: Settings
) -> None:
    audience = provider_settings.auth.audience
    async with serving(provider_settings) as (app, client):
        provider.down = True
        await app.state.authentication.tokens.keys.refresh()
        assert REGISTRY.get_sample_value("auth_signing_keys_stale") == 1
        token = provider.token(audience, "erin")
        assert (await client.get(PROTECTED, headers=bearer(token))).status_code == 200
        assert (await client.get("/health/ready")).status_code == 200
        provider.down = False
        await app.state.authentication.tokens.keys.refresh()
        assert REGISTRY.get_sample_value("auth_signing_keys_stale") == 0


async def test_hostile_tokens_get_401_and_the_service_keeps_serving(
    provider: IdentityProvider, provider_settings: Settings
) -> None:
    audience = provider_settings.auth.audience
    key = provider.keys[0]
    public_pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {"iss": provider.issuer, "aud": audience, "sub": "mallory", "iat": 0, "exp": 2**33}
    unsigned = b64(json.dumps({"alg": "none", "kid": key.kid}).encode())
    hostile = {
        "alg none": f"{unsigned}.{b64(json.dumps(claims).encode())}.",
        # PyJWT refuses to sign HMAC with a PEM key, so the token is put together by hand.
        "HS256 with the public key": _hs256(claims, key.kid, public_pem),
        "another audience": provider.token("another-api"),
        "another issuer": provider.token(audience, issuer="https://evil.example"),
        "expired beyond the leeway": provider.token(audience, lifetime_seconds=-3600),
        "signed by another key": provider.token(audience, signing_key=SigningKey("x").private),
        "truncated": provider.token(audience)[:-20],
        # The same signature bytes with a non-canonical last character: a verifier
        # that decoded leniently would accept this second spelling of a valid token.
        "non-canonical signature": _non_canonical(provider.token(audience)),
        "junk in the payload": _spliced(provider.token(audience), 1, "!"),
        "padding on a whole quartet": _spliced(provider.token(audience), 1, "===="),
        # JSON, not a string: an unhashable alg must not reach the allowlist's set.
        "alg a list": f"{b64(json.dumps({'alg': ['ES256'], 'kid': key.kid}).encode())}..",
    }
    async with serving(provider_settings) as (_, client):
        # Twice: under a header not yet seen (PyJWT's decode), then once a valid token
        # made the provider's header known (decode_under_known_header).
        for header_known in (False, True):
            for case, token in hostile.items():
                response = await client.get(PROTECTED, headers=bearer(token))
                assert response.status_code == 401, (case, header_known)
                challenge = response.headers["www-authenticate"]
                assert challenge.startswith('Bearer error="invalid_token"')
            valid = await client.get(PROTECTED, headers=bearer(provider.token(audience)))
            assert valid.is_success


def _non_canonical(token: str) -> str:
    """The token with its signature's last character's unused low bits set."""
    signing_input, _, signature = token.rpartition(".")
    unused_bits = {2: 4, 3: 2}[len(signature) % 4]
    last = B64_ALPHABET.index(signature[-1])
    assert last % (1 << unused_bits) == 0  # canonical as signed
    return f"{signing_input}.{signature[:-1]}{B64_ALPHABET[last + 1]}"


def _spliced(token: str, segment: int, text: str) -> str:
    segments = token.split(".")
    segments[segment] += text
    return ".".join(segments)


def _hs256(claims: dict[str, object], kid: str, secret: bytes) -> str:
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415

    header = b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


@pytest.mark.parametrize(
    "body",
    [b"<html>not json</html>", b'{"keys": []}', b" " * 300_000],
    ids=["html", "empty", "huge"],
)
async def test_an_unusable_key_set_stops_the_startup(
    provider: IdentityProvider, provider_settings: Settings, body: bytes
) -> None:
    provider.body_override = body
    with pytest.raises(KeySetError):
        async with serving(provider_settings):
            pass


async def test_a_bad_key_set_on_refresh_keeps_the_keys(
    provider: IdentityProvider, provider_settings: Settings
) -> None:
    audience = provider_settings.auth.audience
    async with serving(provider_settings) as (app, client):
        provider.body_override = b"not json"
        await app.state.authentication.tokens.keys.refresh()
        response = await client.get(PROTECTED, headers=bearer(provider.token(audience)))
        assert response.status_code == 200


async def test_a_malformed_key_in_the_set_is_skipped(
    provider: IdentityProvider, provider_settings: Settings
) -> None:
    """A key whose `alg` is a list made PyJWK raise TypeError, not a PyJWTError: the
    startup failed, and a later refresh answered 500 and ended the refresh task."""
    audience = provider_settings.auth.audience
    hostile = {**provider.keys[0].public_jwk(), "kid": "hostile", "alg": ["ES256"]}
    provider.body_override = json.dumps({"keys": [hostile, provider.keys[0].public_jwk()]}).encode()
    async with serving(provider_settings) as (_, client):
        provider.rotate()
        provider.body_override = json.dumps(
            {"keys": [hostile] + [key.public_jwk() for key in provider.keys]}
        ).encode()
        for key in provider.keys:
            response = await client.get(
                PROTECTED, headers=bearer(provider.token(audience, key=key))
            )
            assert response.status_code == 200, response.text
        assert provider.jwks_fetches == 2


def test_pyjwt_refuses_hmac_with_a_public_key() -> None:
    """Why the HS256 token above is assembled by hand."""
    pem = (
        SigningKey("k")
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(jwt.InvalidKeyError):
        jwt.encode({"sub": "x"}, pem, algorithm="HS256")


async def test_discovery_names_the_key_set(provider: IdentityProvider) -> None:
    async with httpx.AsyncClient() as client:
        document = (await client.get(provider.issuer + "/.well-known/openid-configuration")).json()
    assert document["jwks_uri"].startswith(provider.issuer)
