"""A stand-in for Vercel's edge, serving a rendered frontend/ by its vercel.json.

Vercel itself cannot run here, so this applies the routes that @vercel/routing-utils
compiles from vercel.json (tests/node/check_vercel.js prints them): header routes,
redirects, the filesystem (public/, with cleanUrls), then rewrites, proxying a
rewrite to the API with the placeholder origin swapped for the API under test. The
routes are Vercel's own; only their interpretation here is hand-written, as no
library serves them outside Vercel.
"""

from __future__ import annotations

import contextlib
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .node_tools import substitute

# Not forwarded: they describe one connection, not the request (RFC 9110 §7.6.1).
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length"}


class _Handler(SimpleHTTPRequestHandler):
    routes: list[dict[str, Any]]
    upstreams: dict[str, str]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the browser test reports what matters."""

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        path = self.path.split("?", 1)[0]
        headers: dict[str, str] = {}
        for route in self.routes:
            if route.get("handle") == "filesystem":
                if self._serve_file(path, headers):
                    return
                continue
            match = re.search(route["src"], path)
            if not match:
                continue
            route_headers = {k: substitute(v, match) for k, v in route.get("headers", {}).items()}
            if "status" in route:
                self._answer(route["status"], headers | route_headers, b"")
                return
            headers |= route_headers
            if "dest" in route:
                self._proxy(substitute(route["dest"], match), headers)
                return
        self._answer(404, headers, b"not found")

    def _serve_file(self, path: str, headers: dict[str, str]) -> bool:
        root = Path(self.directory)
        candidates = [path.rstrip("/") + "/index.html", path + ".html", path]  # cleanUrls
        for candidate in candidates:
            file = (root / candidate.lstrip("/")).resolve()
            if file.is_file() and root.resolve() in file.parents:
                body = file.read_bytes()
                content_type = self.guess_type(str(file))
                self._answer(200, headers | {"Content-Type": content_type}, body)
                return True
        return False

    def _proxy(self, destination: str, headers: dict[str, str]) -> None:
        for placeholder, upstream in self.upstreams.items():
            destination = destination.replace(placeholder, upstream)
        query = self.path.partition("?")[2]
        length = int(self.headers.get("Content-Length") or 0)
        request = urllib.request.Request(
            destination + (f"?{query}" if query else ""),
            data=self.rfile.read(length) if length else None,
            method=self.command,
            headers={k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, upstream_headers, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, upstream_headers, body = error.code, error.headers, error.read()
        passed = {k: v for k, v in upstream_headers.items() if k.lower() not in HOP_BY_HOP}
        self._answer(status, passed | headers, body)

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def vercel_host(
    public: Path, routes: list[dict[str, Any]], upstreams: dict[str, str]
) -> Iterator[str]:
    """Serve `public` by `routes` on a free 127.0.0.1 port; yield its origin."""
    handler = type("Handler", (_Handler,), {"routes": routes, "upstreams": upstreams})

    def make_handler(*args: Any) -> _Handler:
        made: _Handler = handler(*args, directory=str(public))
        return made

    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
