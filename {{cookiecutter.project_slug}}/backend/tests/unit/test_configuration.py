"""The layered configuration: YAML base, per-environment YAML, APP_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.configuration import ConfigurationError, load_settings


def test_environment_file_overrides_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENVIRONMENT", "local")
    settings = load_settings()
    assert settings.environment == "local"
    assert settings.application.docs_enabled is True  # local.yaml over base.yaml's false
    assert settings.database.pool.max_lifetime_seconds == 1800


def test_environment_variables_override_files_with_nesting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APP_DATABASE__POOL__MAX_SIZE", "40")
    monkeypatch.setenv("APP_SERVER__PORT", "9001")
    settings = load_settings()
    assert settings.database.pool.max_size == 40
    assert settings.server.port == 9001
    assert settings.database.pool.acquire_timeout_seconds == 2


def test_invalid_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_DATABASE__POOL__MAX_SIZE", "0")
    with pytest.raises(ConfigurationError, match=r"database\.pool\.max_size"):
        load_settings()


def test_pool_min_above_max_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_DATABASE__POOL__MIN_SIZE", "5")
    monkeypatch.setenv("APP_DATABASE__POOL__MAX_SIZE", "4")
    with pytest.raises(ConfigurationError, match=r"database\.pool.*min_size \(5\)"):
        load_settings()


def test_production_requires_a_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENVIRONMENT", "production")
    with pytest.raises(ConfigurationError, match=r"database\.url \(or APP_DATABASE__URL\)"):
        load_settings()


def test_unknown_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENVIRONMENT", "staging")
    with pytest.raises(ConfigurationError, match="APP_ENVIRONMENT: 'staging'"):
        load_settings()


def test_unknown_key_in_yaml_is_rejected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[2] / "configuration"
    (tmp_path / "base.yaml").write_text((source / "base.yaml").read_text())
    (tmp_path / "test.yaml").write_text("database:\n  pool:\n    max_szie: 3\n")
    monkeypatch.setenv("APP_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("APP_DATABASE__URL", "postgresql://u@127.0.0.1/db")
    with pytest.raises(ConfigurationError, match=r"database\.pool\.max_szie"):
        load_settings()


def test_password_never_appears_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_DATABASE__URL", "postgresql://app:hunter2@127.0.0.1/db")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())
    assert settings.database.url.get_secret_value().endswith("hunter2@127.0.0.1/db")


def test_non_postgres_url_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_DATABASE__URL", "mysql://root@127.0.0.1/db")
    with pytest.raises(ConfigurationError, match=r"database"):
        load_settings()


def test_request_timeout_must_end_before_the_graceful_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APP_HTTP__REQUEST_TIMEOUT_SECONDS", "20")
    with pytest.raises(
        ConfigurationError,
        match=r"http\.request_timeout_seconds \(20\.0\) must be below server\.graceful_shutdown",
    ):
        load_settings()


def test_keep_alive_is_layered_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_SERVER__KEEP_ALIVE_SECONDS", "75")
    assert load_settings().server.keep_alive_seconds == 75
    monkeypatch.setenv("APP_SERVER__KEEP_ALIVE_SECONDS", "0")
    with pytest.raises(ConfigurationError, match=r"server\.keep_alive_seconds"):
        load_settings()
