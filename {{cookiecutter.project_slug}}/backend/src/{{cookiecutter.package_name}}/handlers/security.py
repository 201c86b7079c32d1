"""Security headers on every response, as pure ASGI middleware."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# An API answers JSON: nothing may sniff it into another type, frame it, or learn
# where its users came from.
STATIC_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}


def _is_https(scope: Scope) -> bool:
    """HTTPS to uvicorn, or to the TLS proxy in front (X-Forwarded-Proto). Trusting the
    header here is safe: HSTS sent over plain HTTP is ignored by browsers."""
    forwarded = Headers(scope=scope).get("x-forwarded-proto", "")
    return scope.get("scheme") == "https" or forwarded.split(",")[0].strip() == "https"


class SecurityHeadersMiddleware:
    """Adds STATIC_HEADERS, and Strict-Transport-Security on HTTPS requests (or on
    all, with `hsts_always`), unless the route set its own value."""

    def __init__(
        self, app: ASGIApp, *, hsts_max_age_seconds: int, hsts_always: bool = False
    ) -> None:
        self.app = app
        self.hsts = f"max-age={hsts_max_age_seconds}; includeSubDomains"
        self.hsts_max_age_seconds = hsts_max_age_seconds
        self.hsts_always = hsts_always

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(STATIC_HEADERS)
        if self.hsts_max_age_seconds and (self.hsts_always or _is_https(scope)):
            headers["strict-transport-security"] = self.hsts

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in headers.items():
                    response_headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
