"""A real identity provider's key endpoints on 127.0.0.1: discovery and JWKS served
over HTTP by a thread of the test process, with keys made by `cryptography`. Tests
rotate the keys, count the fetches, take it down, or make it answer garbage."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

JWKS_PATH = "/jwks.json"


@dataclass
class SigningKey:
    kid: str
    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = jwt.algorithms.ECAlgorithm.to_jwk(
            self.private.public_key(), as_dict=True
        )
        return {**jwk, "kid": self.kid, "alg": "ES256", "use": "sig"}


@dataclass
class IdentityProvider:
    """What the server answers; change the fields while it serves."""

    issuer: str = ""
    keys: list[SigningKey] = field(default_factory=lambda: [SigningKey(uuid.uuid4().hex)])
    jwks_fetches: int = 0
    down: bool = False
    body_override: bytes | None = None

    def jwks(self) -> bytes:
        if self.body_override is not None:
            return self.body_override
        return json.dumps({"keys": [key.public_jwk() for key in self.keys]}).encode()

    def rotate(self) -> SigningKey:
        new = SigningKey(uuid.uuid4().hex)
        self.keys.append(new)
        return new

    def token(
        self,
        audience: str,
        subject: str = "alice",
        scopes: str = "",
        *,
        key: SigningKey | None = None,
        lifetime_seconds: int = 300,
        issuer: str | None = None,
        signing_key: ec.EllipticCurvePrivateKey | None = None,
        **extra: Any,
    ) -> str:
        signer = key or self.keys[0]
        now = int(time.time())
        claims = {
            "iss": issuer or self.issuer,
            "aud": audience,
            "sub": subject,
            "scope": scopes,
            "iat": now,
            "exp": now + lifetime_seconds,
            **extra,
        }
        return jwt.encode(
            claims, signing_key or signer.private, algorithm="ES256", headers={"kid": signer.kid}
        )


def _handler(provider: IdentityProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if provider.down:
                self.send_error(503)
                return
            if self.path == "/.well-known/openid-configuration":
                body = json.dumps(
                    {"issuer": provider.issuer, "jwks_uri": provider.issuer + JWKS_PATH}
                ).encode()
            elif self.path == JWKS_PATH:
                provider.jwks_fetches += 1
                body = provider.jwks()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    return Handler


@contextmanager
def identity_provider() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
