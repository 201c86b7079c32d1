"""Tokens for the tests: signed by the development key, which configuration/test.yaml trusts."""

from __future__ import annotations

from {{ cookiecutter.package_name }}.auth.development import mint
from {{ cookiecutter.package_name }}.configuration import Settings

{% set scopes = [] -%}
{% if cookiecutter.example_domain == "ledger" %}{% set scopes = scopes + ["ledger:read", "ledger:write"] %}{% endif -%}
{% if cookiecutter.background_worker == "yes" %}{% set scopes = scopes + ["webhooks:manage"] %}{% endif -%}
ALL_SCOPES = "{{ scopes | join(" ") }}"


def bearer(settings: Settings, subject: str = "alice", scopes: str = ALL_SCOPES) -> dict[str, str]:
    """The Authorization header of a token for `subject` with `scopes`."""
    return {"Authorization": f"Bearer {mint(subject, scopes, settings.auth.audience)}"}
