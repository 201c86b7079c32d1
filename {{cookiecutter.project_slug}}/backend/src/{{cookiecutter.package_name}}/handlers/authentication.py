"""Bearer authentication over HTTP: read the Authorization header, ask the verifier
(auth/) for the principal, answer 401/403 as RFC 6750 and RFC 9457 say.
{%- if cookiecutter.auth in ["api_key", "both"] %}

API keys travel in the same header (`Authorization: Bearer lk_live_…`, as Stripe's
and GitHub's do): one scheme for Swagger UI, the console, k6 and curl alike{% if cookiecutter.auth == "both" %}, and
the prefix tells a key from a JWT before anything is parsed{% endif %}.
{%- endif %}"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.responses import JSONResponse
from fastapi.security.base import SecurityBase
from starlette.types import Scope

{% if cookiecutter.auth in ["api_key", "both"] -%}
from ..auth.api_keys import {% if cookiecutter.auth == "both" %}ApiKeyVerifier, is_api_key{% else %}ApiKeyVerifier{% endif %}
{% endif -%}
from ..auth.errors import InvalidTokenError
{%- if cookiecutter.auth in ["oidc", "both"] %}
from ..auth.tokens import TokenVerifier
{%- endif %}
from ..principal import Principal
from ..telemetry import bind_request_field
from .problems import problem_response, problem_responses

logger = structlog.get_logger("auth")
# One description for every refused token: which check failed is for the log only.
REFUSAL_DESCRIPTION = "The {{ "API key" if cookiecutter.auth == "api_key" else "access token" }} is missing, malformed, {{ "revoked" if cookiecutter.auth == "api_key" else "expired" }} or not for this API"


class AuthenticationError(Exception):
    """401 (no usable token) or 403 (a valid token without the scope needed)."""

    def __init__(self, status: int, challenge: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.challenge = challenge
        self.detail = detail


class Authentication:
    """What BearerToken reads on each request, behind one app.state lookup: Starlette's
    State answers an attribute from __getattr__ after a failed attribute lookup (about
    0.3-0.8 µs each, timed), and a token's request used to make two; BearerToken reads
    it as an item (`state["authentication"]`), which skips that failed lookup."""

    __slots__ = ({% if cookiecutter.auth in ["api_key", "both"] %}"api_keys", {% endif %}"max_header_bytes"{% if cookiecutter.auth in ["oidc", "both"] %}, "tokens"{% endif %})
{%- if cookiecutter.auth in ["api_key", "both"] %}
    api_keys: ApiKeyVerifier  # set by the lifespan, once the database is open
{%- endif %}
{%- if cookiecutter.auth in ["oidc", "both"] %}
    tokens: TokenVerifier  # set by the lifespan, once the key set is fetched
{%- endif %}

    def __init__(self, max_header_bytes: int) -> None:
        self.max_header_bytes = max_header_bytes


def _authorization(scope: Scope) -> bytes | None:
    """The first Authorization header, as sent: read from the ASGI scope's raw headers
    (names lowercase) rather than through request.headers, which builds a Headers
    object and looks the name up through two Python-level calls on every request."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value  # type: ignore[no-any-return]
    return None


def _invalid_token() -> AuthenticationError:
    challenge = f'Bearer error="invalid_token", error_description="{REFUSAL_DESCRIPTION}"'
    return AuthenticationError(401, challenge, REFUSAL_DESCRIPTION + ".")


class BearerToken(SecurityBase):
    """The dependency yielding the caller's Principal, if it holds `scope` (when one is
    given; else 403). A SecurityBase, so FastAPI publishes it as the API's bearer
    scheme and Swagger UI can authorize with it.

    One dependency that checks the scope itself, rather than a scope dependency on top
    of a principal dependency: each level of sub-dependency costs FastAPI's resolver
    a pass per request (measured with callgrind on a cached token's account read,
    bench/in_process.py --authorization)."""

    def __init__(self, scope: str | None = None) -> None:
        self.model = HTTPBearerModel(bearerFormat="{{ "JWT" if cookiecutter.auth == "oidc" else ("API key (lk_live_…)" if cookiecutter.auth == "api_key" else "JWT or API key (lk_live_…)") }}")
        self.scheme_name = "bearer"
        self.scope = scope

    async def __call__(self, request: Request) -> Principal:
        asgi_scope = request.scope
        raw = _authorization(asgi_scope)
        if raw is None:
            raise AuthenticationError(401, "Bearer", "This operation needs a bearer token.")
        # State as a mapping (Starlette 0.52+): as an attribute, State.__getattr__ runs
        # only after the failed attribute lookup has built and dropped an
        # AttributeError, about a quarter of this method's instructions (callgrind).
        authentication: Authentication = asgi_scope["app"].state["authentication"]
        # Before any parsing: a huge header costs nothing more than its length.
        if len(raw) > authentication.max_header_bytes:
            logger.info("token refused", reason="authorization header too large")
            raise _invalid_token()
        scheme, _, credential = raw.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not credential:
            logger.info("token refused", reason="not a bearer token")
            raise _invalid_token()
{%- if cookiecutter.auth == "both" %}
        credential = credential.strip()
        verifier: ApiKeyVerifier | TokenVerifier = (
            authentication.api_keys if is_api_key(credential) else authentication.tokens
        )
{%- elif cookiecutter.auth == "api_key" %}
        verifier = authentication.api_keys
{%- else %}
        verifier = authentication.tokens
        credential = credential.strip()
{%- endif %}
{%- if cookiecutter.auth in ["oidc", "both"] %}
        # A token verified before answers without awaiting a coroutine (about 1,000
        # instructions a request, callgrind); anything else goes through verify().
{%- if cookiecutter.auth == "both" %}
        principal = (
            authentication.tokens.cached(credential) if verifier is authentication.tokens else None
        )
{%- else %}
        principal = verifier.cached(credential)
{%- endif %}
        if principal is None:
            principal = await _verified(verifier, credential)
{%- else %}
        principal = await _verified(verifier, credential.strip())
{%- endif %}
        bind_request_field("subject", principal.subject)
        if self.scope is not None and self.scope not in principal.scopes:
            challenge = f'Bearer error="insufficient_scope", scope="{self.scope}"'
            detail = f"This operation needs the scope {self.scope}."
            raise AuthenticationError(403, challenge, detail)
        return principal


async def _verified(verifier: {{ "ApiKeyVerifier | TokenVerifier" if cookiecutter.auth == "both" else ("ApiKeyVerifier" if cookiecutter.auth == "api_key" else "TokenVerifier") }}, credential: str) -> Principal:
    try:
        return await verifier.verify(credential)
    except InvalidTokenError as error:
        logger.info("token refused", reason=error.reason)
        raise _invalid_token() from None


PrincipalDep = Annotated[Principal, Depends(BearerToken())]


def require_scope(scope: str) -> BearerToken:
    """A dependency: the principal, if its credential grants `scope`; else 403."""
    return BearerToken(scope)


def authentication_problems() -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the 401 and 403 every protected route may answer."""
    responses = problem_responses(401, 403)
    for status in (401, 403):
        responses[status]["headers"] = {
            "WWW-Authenticate": {
                "description": "The Bearer challenge (RFC 6750).",
                "schema": {"type": "string"},
            }
        }
    return responses


async def _authentication_problem(request: Request, exc: AuthenticationError) -> JSONResponse:
    problem_type = (
        "/problems/invalid-token" if exc.status == 401 else "/problems/insufficient-scope"
    )
    return problem_response(
        request,
        exc.status,
        problem_type=problem_type,
        detail=exc.detail,
        headers={"WWW-Authenticate": exc.challenge},
    )


def register_authentication(app: FastAPI, max_header_bytes: int) -> None:
    app.state.authentication = Authentication(max_header_bytes)
    app.exception_handler(AuthenticationError)(_authentication_problem)
