"""What fails on purpose, for the tests of the error paths."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from {{ cookiecutter.package_name }}.handlers.request_context import RequestContextMiddleware


def stream_failing_midway(message: str) -> StreamingResponse:
    """A response whose body raises RuntimeError(`message`) after its first chunk:
    an error once the response has started."""

    async def parts() -> AsyncIterator[bytes]:
        yield b"first"
        raise RuntimeError(message)

    return StreamingResponse(parts())


def raising_for(path: str, app: ASGIApp) -> ASGIApp:
    """`app`, but a request for `path` raises a RuntimeError before reaching it: an
    error that every layer inside lets escape."""

    async def layer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == path:
            message = "secret internals"
            raise RuntimeError(message)
        await app(scope, receive, send)

    return layer


def raising_inside_the_request_context(path: str, stack: ASGIApp) -> None:
    """The app's built middleware stack, changed so that a request for `path` raises
    right inside its RequestContextMiddleware (FastAPI's outer layers, if kept, around it)."""
    layer: Any = stack
    while not isinstance(layer, RequestContextMiddleware):
        layer = layer.app
    layer.app = raising_for(path, layer.app)
