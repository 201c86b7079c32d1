"""The API-key settings: a pepper of 32 characters or more, and in production not the
public development one. Each error names the key to fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.configuration import (
    DEVELOPMENT_PEPPER,
    ConfigurationError,
    load_settings,
)

from ..support.environments import production_environment


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    production_environment(monkeypatch, without="APP_AUTH__API_KEY_PEPPER")


@pytest.mark.usefixtures("production")
def test_production_needs_a_pepper_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match=r"auth\.api_key_pepper .*Field required"):
        load_settings()
    monkeypatch.setenv("APP_AUTH__API_KEY_PEPPER", DEVELOPMENT_PEPPER)
    with pytest.raises(ConfigurationError, match=r"auth\.api_key_pepper is the public development"):
        load_settings()
    monkeypatch.setenv("APP_AUTH__API_KEY_PEPPER", "s" * 32)
    assert load_settings().auth.api_key_pepper.get_secret_value() == "s" * 32


def test_a_short_pepper_is_refused_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_AUTH__API_KEY_PEPPER", "short")
    with pytest.raises(ConfigurationError, match=r"auth\.api_key_pepper.*at least 32 characters"):
        load_settings()


@pytest.mark.usefixtures("production")
def test_make_api_key_names_the_bad_setting_without_a_traceback() -> None:
    """`make api-key` against a deployment's settings: a refused pepper is one message."""
    script = Path(__file__).parents[2] / "scripts" / "api_key.py"
    environment = {**os.environ, "APP_AUTH__API_KEY_PEPPER": DEVELOPMENT_PEPPER}
    result = subprocess.run(  # noqa: S603 - this interpreter and our own script
        [sys.executable, str(script), "create", "billing"],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "auth.api_key_pepper is the public development pepper" in result.stderr
