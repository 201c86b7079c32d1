"""The benchmark's identity provider: an OpenID Connect discovery document and a key
set served on 127.0.0.1 by a thread of the benchmark's process, the tokens it signs,
and the APP_* settings that make the rendered service (auth=oidc, production
configuration, which refuses the development key) trust it.

Two keys: RSA 2048 for RS256, what Auth0, Cognito, Entra ID, Keycloak and Google
sign with by default (`make bench` sends an RS256 token), and Ed25519 for EdDSA,
what the rendered project's `make token` signs with (bench/auth_cost.py prices both).
The accounts a benchmark reads and moves money between are held by SUBJECT."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

AUDIENCE = "bench-api"
SUBJECT = "bench-user"
SCOPES = "ledger:read ledger:write"
JWKS_PATH = "/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"
KEY_IDS = {"RS256": "rsa", "EdDSA": "ed"}
# A run's one token outlives the longest run (make bench takes under 15 minutes).
RUN_TOKEN_SECONDS = 6 * 3600


class IdentityProvider:
    """Serves from construction until close()."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        keys = [
            jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True),
            jwt.algorithms.OKPAlgorithm.to_jwk(self.ed.public_key(), as_dict=True),
        ]
        documents = {
            DISCOVERY_PATH: {"issuer": self.issuer, "jwks_uri": self.url + JWKS_PATH},
            JWKS_PATH: {
                "keys": [
                    {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}
                    for jwk, (algorithm, kid) in zip(keys, KEY_IDS.items(), strict=True)
                ]
            },
        }
        bodies = {path: json.dumps(document).encode() for path, document in documents.items()}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = bodies.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server.RequestHandlerClass = Handler
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def issuer(self) -> str:
        # With the trailing slash, as Auth0 spells its issuers: the service must take `iss`
        # exactly as configured and still find the discovery document.
        return self.url + "/"

    def service_environment(self) -> dict[str, str]:
        """The settings that make the rendered service trust this provider; it finds the
        key set through the discovery document, as it does with an unset jwks_url."""
        return {"APP_AUTH__ISSUER": self.issuer, "APP_AUTH__AUDIENCE": AUDIENCE}

    def token(self, algorithm: str = "RS256", lifetime_seconds: int = 3600) -> str:
        """A token for SUBJECT with SCOPES; a distinct one each call (a cache miss each)."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": SUBJECT,
            "scope": SCOPES,
            "iat": now,
            "exp": now + lifetime_seconds,
            "jti": uuid.uuid4().hex,
        }
        key: Any = self.rsa if algorithm == "RS256" else self.ed
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": KEY_IDS[algorithm]})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def authorization_file(path: Path, tokens: list[str]) -> Path:
    """`path` holding an Authorization header value per token, one a line, as the
    rendered scripts/in_process.py --authorization reads them (in turn)."""
    path.write_text("".join(f"Bearer {token}\n" for token in tokens))
    return path
