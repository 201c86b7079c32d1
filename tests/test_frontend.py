"""The test console (include_frontend=yes) in every variant: its files and CORS
entries exist only with it; vercel.json passes Vercel's own routing library and
nginx.conf an nginx parser. tests/test_console_browser.py runs it in a browser."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import crossplane
import pytest
import yaml

from .support.node_tools import check_vercel, rewrite_of, vercel_routes
from .support.shipped_files import compose
from .support.template_files import answers_with_defaults
from .variants import SUPPORTED, variant_id

FRONTEND_VARIANTS = [
    variant for variant in SUPPORTED if answers_with_defaults(variant)["include_frontend"] == "yes"
]


def console_port(project: Path) -> int:
    match = re.search(r"^CONSOLE_PORT \?= (\d+)$", (project / "Makefile").read_text(), re.MULTILINE)
    assert match, "no CONSOLE_PORT in the Makefile"
    return int(match[1])


def configured_origins(project: Path) -> dict[str, list[str]]:
    """cors.allowed_origins of each configuration file that sets it."""
    origins = {}
    for path in sorted((project / "backend" / "configuration").glob("*.yaml")):
        settings = yaml.safe_load(path.read_text()) or {}
        if "cors" in settings:
            origins[path.stem] = settings["cors"]["allowed_origins"]
    return origins


# --- Every variant: files, configuration, vercel.json, nginx.conf --------------------


def test_console_files_and_cors_origins_exist_only_with_the_frontend(
    shipped: tuple[dict[str, str], Path],
) -> None:
    answers, project = shipped
    origins = configured_origins(project)
    assert origins["base"] == [], "no origin is allowed by default"
    assert "production" not in origins
    if answers["include_frontend"] == "yes":
        assert (project / "frontend" / "public" / "index.html").is_file()
        port = console_port(project)
        assert origins["local"] == [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
        assert "--directory frontend/public" in (project / "Makefile").read_text()
    else:
        assert not (project / "frontend").exists()
        assert set(origins) == {"base"}, f"CORS entries without a frontend: {origins}"
        assert "console" not in (project / "Makefile").read_text()


@pytest.mark.parametrize("variant", FRONTEND_VARIANTS, ids=variant_id)
def test_vercel_json_passes_vercels_routing_validation(
    shipped: tuple[dict[str, str], Path],
) -> None:
    _, project = shipped
    config = json.loads((project / "frontend" / "vercel.json").read_text())
    assert config["outputDirectory"] == "public"
    routes = vercel_routes(project)
    (rewrite,) = config["rewrites"]
    api = urlsplit(rewrite["destination"])
    upstream = f"{api.scheme}://{api.netloc}".lower()
    assert rewrite_of(routes, "/api/v1/accounts") == f"{upstream}/v1/accounts"
    assert rewrite_of(routes, "/api/health/ready") == f"{upstream}/health/ready"
    assert rewrite_of(routes, "/index.html") is None, "static files are not rewritten"
    (headers,) = [route["headers"] for route in routes if route.get("continue")]
    assert "connect-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" in headers


def test_vercel_check_rejects_a_broken_vercel_json(tmp_path: Path) -> None:
    broken = tmp_path / "vercel.json"
    broken.write_text(json.dumps({"rewrites": [{"source": "/api/:path*"}], "outputDir": "x"}))
    result = check_vercel(broken)
    assert result.returncode == 1
    errors = json.loads(result.stdout)["errors"]
    assert any("outputDir" in error for error in errors), errors
    assert any("destination" in error for error in errors), errors


def parse_nginx(conf: Path, tmp_path: Path) -> dict[str, Any]:
    """crossplane on the file as nginx includes it (conf.d, inside http)."""
    main = tmp_path / "nginx.conf"
    main.write_text(f"events {{}}\nhttp {{ include {conf}; }}\n")
    parsed: dict[str, Any] = crossplane.parse(str(main), strict=True)
    return parsed


@pytest.mark.parametrize("variant", FRONTEND_VARIANTS, ids=variant_id)
def test_compose_nginx_serves_the_console_and_passes_api_to_the_api(
    shipped: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    _, project = shipped
    services = compose(project)["services"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":") for volume in services["frontend"]["volumes"])
    assert mounts == {
        "./frontend/public": "/usr/share/nginx/html",
        "./frontend/nginx.conf": "/etc/nginx/conf.d/default.conf",
    }
    parsed = parse_nginx(project / "frontend" / "nginx.conf", tmp_path)
    assert parsed["status"] == "ok", parsed["errors"]
    (server,) = parsed["config"][1]["parsed"]
    locations = {
        entry["args"][0]: entry["block"]
        for entry in server["block"]
        if entry["directive"] == "location"
    }
    api = {entry["directive"]: entry["args"] for entry in locations["/api/"]}
    api_port = services["api"]["ports"][0].rsplit(":", 1)[1]
    # Resolved per request (Docker's DNS), with /api stripped by the rewrite.
    assert api["set"] == ["$api", f"http://api:{api_port}"]
    assert api["proxy_pass"] == ["$api"]
    assert api["rewrite"] == ["^/api/(.*)$", "/$1", "break"]
    assert api["resolver"][0] == "127.0.0.11"
    root = next(entry["args"] for entry in server["block"] if entry["directive"] == "root")
    assert root == [mounts["./frontend/public"]]


def test_nginx_parser_rejects_a_broken_configuration(tmp_path: Path) -> None:
    broken = tmp_path / "default.conf"
    broken.write_text("server { listen 80; location /api/ { proxy_passs http://api:8000/; } }\n")
    parsed = parse_nginx(broken, tmp_path)
    assert parsed["status"] == "failed"
    assert "proxy_passs" in parsed["errors"][0]["error"]
