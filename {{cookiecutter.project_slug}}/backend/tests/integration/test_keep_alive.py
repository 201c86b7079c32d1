"""The served process keeps an idle connection open for server.keep_alive_seconds, not
uvicorn's 5 s default: the load balancer in front must be the side that closes it."""

from __future__ import annotations

import http.client
import socket
import time
from urllib.parse import urlsplit

from ..support.service import running_service

UVICORN_DEFAULT_SECONDS = 5
KEEP_ALIVE_SECONDS = UVICORN_DEFAULT_SECONDS + 3


def closed_by_peer(connection: socket.socket) -> bool:
    """True once the server has closed its end (a read returns end-of-file)."""
    connection.setblocking(False)
    try:
        return connection.recv(1) == b""
    except BlockingIOError:
        return False


def test_an_idle_connection_outlives_uvicorns_default(database_url: str) -> None:
    environment = {
        "APP_ENVIRONMENT": "test",
        "APP_DATABASE__URL": database_url,
        "APP_SERVER__KEEP_ALIVE_SECONDS": str(KEEP_ALIVE_SECONDS),
    }
    with running_service(environment) as base_url:
        address = urlsplit(base_url)
        client = http.client.HTTPConnection(address.netloc, timeout=5)
        try:
            client.request("GET", "/health/live")
            response = client.getresponse()
            response.read()
            assert response.status == 200
            assert client.sock is not None
            time.sleep(UVICORN_DEFAULT_SECONDS + 1)
            assert not closed_by_peer(client.sock), "closed at uvicorn's default keep-alive"
        finally:
            client.close()
