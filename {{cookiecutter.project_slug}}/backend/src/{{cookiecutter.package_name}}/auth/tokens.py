"""Bearer tokens (JWT) checked with PyJWT: signature by one of the provider's keys,
an allowed asymmetric algorithm, `exp`/`nbf`/`iat` with leeway, `iss` and `aud`."""

from __future__ import annotations

from collections.abc import Iterable

import jwt

from ..principal import API_KEY_SUBJECT_PREFIX, SUBJECT_MAX_LENGTH, Principal
from .decoder import TokenDecoder, decode_under_known_header
from .errors import InvalidTokenError
from .jwks import KeySet
from .token_cache import VerifiedTokens

# Distinct token headers whose key is remembered: a provider's tokens signed by one
# key share one byte-identical header, so a handful covers a rotation.
HEADER_CACHE_SIZE = 64
# The checks PyJWT names, as the log's reason: which check failed, never the token.
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not yet valid"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.MissingRequiredClaimError, "missing claim"),
    # After InvalidSignatureError, which is a DecodeError: segments, JSON, b64=false.
    (jwt.DecodeError, "malformed"),
)


class TokenVerifier:
    """Verifies a token once, then answers from this worker's cache until it expires."""

    def __init__(
        self,
        keys: KeySet,
        *,
        issuer: str,
        audience: str,
        algorithms: Iterable[str],
        leeway_seconds: int,
        scopes_claim: str,
        cache: VerifiedTokens,
    ) -> None:
        self.keys = keys
        self._issuer = issuer
        self._audience = audience
        self._algorithms = frozenset(algorithms)
        self._leeway = leeway_seconds
        self._scopes_claim = scopes_claim
        self._cache = cache
        # The principal of a token this worker verified, until it expires, else None:
        # a plain call, so that BearerToken's usual case awaits no coroutine.
        self.cached = cache.get
        self._decoder = TokenDecoder()
        # The key each header segment resolved to, with the key set's generation it
        # came from: a new token with a known header skips the header's parse and
        # checks, and PyJWT's general decode (auth/decoder.py).
        self._keys_by_header: dict[str, tuple[int, jwt.PyJWK]] = {}

    async def verify(self, token: str) -> Principal:
        """The token's principal, or InvalidTokenError."""
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        header_segment = token.partition(".")[0]
        generation = self.keys.generation  # before the lookup, which may await a refresh
        remembered = self._keys_by_header.get(header_segment)
        try:
            if remembered is not None and remembered[0] == generation:
                # A header already accepted with this key: only the signature and the
                # claims are left to check (auth/decoder.py says why hand-written).
                claims = decode_under_known_header(
                    token,
                    remembered[1],
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=self._leeway,
                )
            else:
                key = await self._key_of_header(token)
                claims = self._decoder.decode_token(
                    token, key, audience=self._audience, issuer=self._issuer, leeway=self._leeway
                )
                self._remember(header_segment, generation, key)
        except jwt.PyJWTError as error:
            raise InvalidTokenError(_reason(error)) from None
        principal = Principal(_subject(claims), _scopes(claims.get(self._scopes_claim)))
        # int(), as PyJWT's exp check: it passed there, where float() overflows on 10**400.
        self._cache.put(token, principal, int(claims["exp"]) + self._leeway)
        return principal

    def _remember(self, header_segment: str, generation: int, key: jwt.PyJWK) -> None:
        """Only once a token with this header verified: headers of forged tokens (no
        signature needed to make one) would otherwise push the real ones out."""
        self._keys_by_header.pop(header_segment, None)
        if len(self._keys_by_header) >= HEADER_CACHE_SIZE:
            del self._keys_by_header[next(iter(self._keys_by_header))]
        self._keys_by_header[header_segment] = (generation, key)

    async def _key_of_header(self, token: str) -> jwt.PyJWK:
        """The key the header names, once its algorithm and kid were checked; jwt.decode
        then checks the same header again (the algorithm is the key's only)."""
        try:
            header = self._decoder.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("malformed") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        # A header is attacker-made JSON: a list as alg would be unhashable in the set.
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise InvalidTokenError("algorithm not allowed")
        if not isinstance(kid, str):
            raise InvalidTokenError("no key id")
        key = self.keys.get(kid) or await self.keys.get_unknown(kid)
        if key is None:
            raise InvalidTokenError("unknown key")
        if key.algorithm_name != algorithm:
            raise InvalidTokenError("algorithm does not match the key")
        return key


def _reason(error: jwt.PyJWTError) -> str:
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return reason
    return "invalid claims"


def _subject(claims: dict[str, object]) -> str:
    subject = claims["sub"]
    if not isinstance(subject, str) or not 1 <= len(subject) <= SUBJECT_MAX_LENGTH:
        raise InvalidTokenError("unusable subject")
    # Reserved for API keys, with or without them in this build: turning them on
    # later must not make a user the owner of a key's accounts.
    if subject.startswith(API_KEY_SUBJECT_PREFIX):
        raise InvalidTokenError("subject in the API keys' namespace")
    return subject


def _scopes(value: object) -> frozenset[str]:
    """Space-separated (RFC 8693 `scope`, Entra ID's `scp`) or a list (Okta's `scp`)."""
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()
