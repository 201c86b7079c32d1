"""The body limit's reading of Content-Length, called as the ASGI layer it is, with
no server in front: whatever digits a server lets through must read as a length."""

from __future__ import annotations

import pytest
from starlette.types import Message, Receive, Scope, Send

from {{ cookiecutter.package_name }}.handlers.limits import RequestLimitsMiddleware

pytestmark = pytest.mark.anyio


async def _never_reached(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError


async def _status_for(content_length: bytes) -> int:
    layer = RequestLimitsMiddleware(_never_reached, max_body_bytes=64, timeout_seconds=5)
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", content_length)],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await layer(scope, receive, send)
    return int(sent[0]["status"])


@pytest.mark.parametrize(
    "content_length",
    [
        b"0" * 5000 + b"65",  # zeros first, past int()'s 4,300 digits
        # As many digits, none of them zeros: llhttp refuses it, another server may not.
        b"1" * 4400,
        b"0" * 10 + b"9" * 4400,
        b"99999999999999999999",  # past 64 bits
    ],
)
async def test_a_length_of_any_number_of_digits_over_the_limit_is_a_413(
    content_length: bytes,
) -> None:
    assert await _status_for(content_length) == 413
