"""The OpenAPI document describes the ledger completely, and the running service
keeps to it: schemathesis fuzzes every operation against a real uvicorn and
finds no 5xx and no mismatch."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from {{ cookiecutter.package_name }}.configuration import {% if cookiecutter.auth != "none" %}Settings, {% endif %}load_settings
from {{ cookiecutter.package_name }}.handlers import accounts, health, {% if cookiecutter.auth != "none" %}identity, {% endif %}transfers{% if cookiecutter.background_worker == "yes" %}, webhooks{% endif %}
from {{ cookiecutter.package_name }}.startup import create_app

from ..support.service import running_service
{%- if cookiecutter.auth != "none" %}
from ..support.tokens import bearer
{%- endif %}

{% if cookiecutter.auth != "none" -%}
# Every ledger route needs a token with a scope.
AUTHENTICATION = {401, 403}
{%- else -%}
AUTHENTICATION: set[int] = set()
{%- endif %}
LEDGER_OPERATIONS = {
    ("post", "/v1/accounts"): {201, 400, 422, 503} | AUTHENTICATION,
    ("get", "/v1/accounts"): {200, 400, 422, 503} | AUTHENTICATION,
    ("get", "/v1/accounts/{account_id}"): {200, 404, 422, 503} | AUTHENTICATION,
    ("get", "/v1/accounts/{account_id}/transfers"): {200, 400, 404, 422, 503} | AUTHENTICATION,
    ("post", "/v1/transfers"): {201, 400, 404, 409, 422, 503} | AUTHENTICATION,
    ("get", "/v1/transfers/{transfer_id}"): {200, 404, 422, 503} | AUTHENTICATION,
}
PARAMETERS = {
    ("get", "/v1/accounts"): {("query", "limit"), ("query", "cursor")},
    ("get", "/v1/accounts/{account_id}"): {("path", "account_id")},
    ("get", "/v1/accounts/{account_id}/transfers"): {
        ("path", "account_id"),
        ("query", "limit"),
        ("query", "cursor"),
    },
    ("post", "/v1/transfers"): {("header", "Idempotency-Key")},
    ("get", "/v1/transfers/{transfer_id}"): {("path", "transfer_id")},
}
PROBLEM_TYPES = {
    "/problems/account-not-found",
    "/problems/transfer-not-found",
    "/problems/insufficient-funds",
    "/problems/currency-mismatch",
    "/problems/same-account-transfer",
    "/problems/balance-limit",
    "/problems/invalid-cursor",
    "/problems/idempotency-key-missing",
    "/problems/idempotency-key-invalid",
    "/problems/idempotency-key-in-use",
    "/problems/idempotency-key-reused",
{%- if cookiecutter.auth != "none" %}
    "/problems/not-account-holder",
{%- endif %}
}


@pytest.fixture
def app_without_database(monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    # The document needs no database: the app is built, never started.
    monkeypatch.setenv("APP_DATABASE__URL", "postgresql://unused@127.0.0.1/unused")
    return create_app(load_settings())


@pytest.fixture
def document(app_without_database: FastAPI) -> dict[str, Any]:
    return app_without_database.openapi()


def test_every_route_is_documented(document: dict[str, Any]) -> None:
    routes = {
        (method.lower(), route.path)
        for router in (
            health.router,
            accounts.router,
            transfers.router,
{%- if cookiecutter.auth != "none" %}
            identity.router,
{%- endif %}
{%- if cookiecutter.background_worker == "yes" %}
            webhooks.router,
            webhooks.dead_letters_router,
{%- endif %}
        )
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert routes == documented
    assert set(LEDGER_OPERATIONS) <= documented


@pytest.mark.parametrize(("method", "path"), sorted(LEDGER_OPERATIONS))
def test_every_status_and_error_body_is_documented(
    document: dict[str, Any], method: str, path: str
) -> None:
    responses = document["paths"][path][method]["responses"]
    assert {int(status) for status in responses} == LEDGER_OPERATIONS[(method, path)]
    for status, response in responses.items():
        if int(status) >= 400:
            schema = response["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (status, schema)


@pytest.mark.parametrize(("method", "path"), sorted(PARAMETERS))
def test_every_parameter_is_documented(document: dict[str, Any], method: str, path: str) -> None:
    parameters = document["paths"][path][method]["parameters"]
    assert {(p["in"], p["name"]) for p in parameters} == PARAMETERS[(method, path)]
    for parameter in parameters:
        assert parameter["schema"], parameter
        assert parameter["required"] == (parameter["in"] in ("path", "header")), parameter


def test_headers_and_problem_types_are_documented(document: dict[str, Any]) -> None:
    create_transfer = document["paths"]["/v1/transfers"]["post"]["responses"]
    assert set(create_transfer["201"]["headers"]) == {"Location", "Idempotent-Replayed"}
    assert set(create_transfer["409"]["headers"]) == {"Retry-After"}
    assert set(create_transfer["503"]["headers"]) == {"Retry-After"}
    create_account = document["paths"]["/v1/accounts"]["post"]["responses"]
    assert set(create_account["201"]["headers"]) == {"Location"}
    descriptions = json.dumps(document["paths"])
    assert {kind for kind in PROBLEM_TYPES if f"`{kind}`" in descriptions} == PROBLEM_TYPES


SCHEMATHESIS_CONFIG = (Path(__file__).parents[1] / "schemathesis.toml").read_text()


{% if cookiecutter.auth != "none" -%}
def test_the_service_keeps_to_its_schema(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
{%- else -%}
def test_the_service_keeps_to_its_schema(database_url: str, tmp_path: Path) -> None:
{%- endif %}
    environment = {
        "APP_ENVIRONMENT": "test",
        "APP_DATABASE__URL": database_url,
        "APP_APPLICATION__DOCS_ENABLED": "true",
    }
{%- if cookiecutter.auth != "none" %}
    # One principal for every request, holding the funded accounts it transfers from.
    (authorization,) = bearer(settings).values()
    headers = {"Authorization": authorization}
{%- else %}
    headers: dict[str, str] = {}
{%- endif %}
    with running_service(environment) as base_url:
        funded = [_open_account(base_url, "EUR", headers) for _ in range(2)]
        config = tmp_path / "schemathesis.toml"
        config.write_text(f"{SCHEMATHESIS_CONFIG}\n[dictionaries.funded]\nvalues = {funded}\n")
        result = subprocess.run(  # noqa: S603
            [
                str(Path(sys.executable).with_name("st")),
                "--config-file",
                str(config),
                "run",
                f"{base_url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                "20",
                # One worker: hypothesis parses lambdas with ast in each thread, which
                # CPython before 3.11.8 cannot do concurrently (gh-106905).
                "--workers",
                "1",
                "--no-color",
                *(f"--header={name}: {value}" for name, value in headers.items()),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    # 6 of the ledger, 3 probes{% if cookiecutter.auth != "none" %}, GET /v1/me{% endif %}{% if cookiecutter.background_worker == "yes" %}, 6 of the webhooks API{% endif %}.
    operations = {{ 9 + (1 if cookiecutter.auth != "none" else 0) + (6 if cookiecutter.background_worker == "yes" else 0) }}
    assert f"Operations:       {operations} selected / {operations} total" in result.stdout


def _open_account(base_url: str, currency: str, headers: dict[str, str]) -> int:
    body = json.dumps({"owner": "fuzz", "currency": currency, "opening_balance_minor": 10**12})
    request = urllib.request.Request(  # noqa: S310 (our own service on 127.0.0.1)
        f"{base_url}/v1/accounts",
        data=body.encode(),
        headers={"content-type": "application/json", **headers},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        account_id: int = json.load(response)["id"]
    return account_id
