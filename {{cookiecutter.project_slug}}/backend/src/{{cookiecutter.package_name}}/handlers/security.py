"""Security headers on every response, as pure ASGI middleware."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# An API answers JSON: nothing may sniff it into another type, frame it, or learn
# where its users came from. Raw (bytes) headers, as ASGI sends them: this runs on
# every response, so nothing is encoded or parsed per request.
Header = tuple[bytes, bytes]
STATIC_HEADERS: tuple[Header, ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
)
HSTS_HEADER = b"strict-transport-security"


def _is_https(scope: Scope) -> bool:
    """HTTPS to uvicorn, or to the TLS proxy in front (X-Forwarded-Proto). Trusting the
    header here is safe: HSTS sent over plain HTTP is ignored by browsers."""
    if scope.get("scheme") == "https":
        return True
    for name, value in scope["headers"]:
        if name == b"x-forwarded-proto":
            return bool(value.split(b",")[0].strip().lower() == b"https")
    return False


class SecurityHeadersMiddleware:
    """Adds STATIC_HEADERS, and Strict-Transport-Security on HTTPS requests (or on
    all, with `hsts_always`), unless the route set its own value."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts_max_age_seconds: int,
        hsts_always: bool = False,
        hsts_include_subdomains: bool = False,
    ) -> None:
        self.app = app
        hsts = f"max-age={hsts_max_age_seconds}"
        if hsts_include_subdomains:
            hsts += "; includeSubDomains"
        self.hsts: Header = (HSTS_HEADER, hsts.encode())
        self.hsts_max_age_seconds = hsts_max_age_seconds
        self.hsts_always = hsts_always

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = STATIC_HEADERS
        if self.hsts_max_age_seconds and (self.hsts_always or _is_https(scope)):
            added = (*STATIC_HEADERS, self.hsts)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(header for header in added if header[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
