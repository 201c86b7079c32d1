"""The auth settings: asymmetric algorithms only, one source of keys, and no
development key in production. Each error names the key to fix."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.configuration import ConfigurationError, load_settings

from ..support.environments import production_environment


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
def test_hmac_and_none_are_refused_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, algorithm: str
) -> None:
    monkeypatch.setenv("APP_AUTH__ALGORITHMS", f'["RS256", "{algorithm}"]')
    with pytest.raises(ConfigurationError, match=rf"auth\.algorithms\.1.*'{algorithm}' is refused"):
        load_settings()


def test_production_refuses_the_development_key(monkeypatch: pytest.MonkeyPatch) -> None:
    production_environment(monkeypatch, without="APP_AUTH__ISSUER")
    monkeypatch.setenv("APP_AUTH__DEVELOPMENT_KEY", "true")
    with pytest.raises(ConfigurationError, match=r"auth\.development_key must be false"):
        load_settings()


def test_production_needs_an_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    production_environment(monkeypatch, without="APP_AUTH__ISSUER")
    with pytest.raises(ConfigurationError, match=r"set auth\.issuer"):
        load_settings()
    monkeypatch.setenv("APP_AUTH__ISSUER", "https://login.example.com/")
    assert load_settings().auth.issuer == "https://login.example.com/"


def test_the_issuer_is_an_http_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_AUTH__DEVELOPMENT_KEY", "false")
    monkeypatch.setenv("APP_AUTH__ISSUER", "login.example.com")
    with pytest.raises(ConfigurationError, match=r"auth\.issuer.*not an http\(s\) URL"):
        load_settings()
