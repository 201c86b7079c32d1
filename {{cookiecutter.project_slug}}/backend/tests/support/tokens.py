"""Tokens for the tests: signed by the development key, which configuration/test.yaml trusts."""

from __future__ import annotations

from {{ cookiecutter.package_name }}.auth.development import mint
from {{ cookiecutter.package_name }}.configuration import Settings

{% if cookiecutter.example_domain == "ledger" -%}
ALL_SCOPES = "ledger:read ledger:write"
{%- else -%}
ALL_SCOPES = ""
{%- endif %}


def bearer(settings: Settings, subject: str = "alice", scopes: str = ALL_SCOPES) -> dict[str, str]:
    """The Authorization header of a token for `subject` with `scopes`."""
    return {"Authorization": f"Bearer {mint(subject, scopes, settings.auth.audience)}"}
