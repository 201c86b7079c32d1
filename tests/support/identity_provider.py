"""An identity provider for the template's tests that run the rendered service with its
production configuration (which trusts no development key): its discovery document
and JWKS served on 127.0.0.1 by a thread of this process, an EC key made by
`cryptography`, and tokens signed with it. Services of projects rendered with
auth=none get none of this (their settings have no auth section)."""

from __future__ import annotations

import functools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

AUDIENCE = "template-tests"
KEY_ID = "template-tests"
SCOPES = "ledger:read ledger:write webhooks:manage"


@functools.cache
def _private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@functools.cache
def issuer() -> str:
    """Start the provider (once per test process); its issuer URL."""
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(_private_key().public_key(), as_dict=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    documents = {
        "/.well-known/openid-configuration": {"issuer": url, "jwks_uri": f"{url}/jwks.json"},
        "/jwks.json": {"keys": [{**jwk, "kid": KEY_ID, "alg": "ES256", "use": "sig"}]},
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in documents:
                self.send_error(404)
                return
            body = json.dumps(documents[self.path]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server.RequestHandlerClass = Handler
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return url


def has_auth(project: Path) -> bool:
    return any((project / "backend" / "src").glob("*/auth/tokens.py"))


def service_environment(project: Path) -> dict[str, str]:
    """The APP_* settings that make the project's service trust this provider."""
    if not has_auth(project):
        return {}
    return {"APP_AUTH__ISSUER": issuer(), "APP_AUTH__AUDIENCE": AUDIENCE}


def token(subject: str = "template-tests", scopes: str = SCOPES) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer(),
        "aud": AUDIENCE,
        "sub": subject,
        "scope": scopes,
        "iat": now,
        "exp": now + 3600,
    }
    return jwt.encode(claims, _private_key(), algorithm="ES256", headers={"kid": KEY_ID})


def project_token(project: Path) -> str | None:
    """A token the project's service trusts (service_environment), None without auth."""
    return token() if has_auth(project) else None
