"""A production process's environment, for the configuration tests: APP_ENVIRONMENT,
a database URL (never connected to) and every authentication setting production
requires, but the one a test leaves out to see it refused."""

from __future__ import annotations

import pytest

PRODUCTION_DATABASE_URL = "postgresql://app@db:5432/app"
# The settings production cannot start without, by environment variable.
{% if cookiecutter.auth == "none" -%}
REQUIRED_IN_PRODUCTION: dict[str, str] = {}
{%- else %}
REQUIRED_IN_PRODUCTION: dict[str, str] = {
{%- if cookiecutter.auth in ["oidc", "both"] %}
    "APP_AUTH__ISSUER": "https://login.example.com/",
{%- endif %}
{%- if cookiecutter.auth in ["api_key", "both"] %}
    "APP_AUTH__API_KEY_PEPPER": "p" * 32,
{%- endif %}
}
{%- endif %}


def production_environment(monkeypatch: pytest.MonkeyPatch, *, without: str = "") -> None:
    """Production's environment, but the variable `without` (left unset)."""
    monkeypatch.setenv("APP_ENVIRONMENT", "production")
    monkeypatch.setenv("APP_DATABASE__URL", PRODUCTION_DATABASE_URL)
    for name, value in REQUIRED_IN_PRODUCTION.items():
        if name != without:
            monkeypatch.setenv(name, value)
