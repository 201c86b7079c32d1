"""The ledger's settings: defaults from base.yaml, overrides, and clear errors."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.configuration import ConfigurationError, load_settings


def test_defaults_keep_keys_a_day(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_DATABASE__URL", "postgresql://u@127.0.0.1/db")
    ledger = load_settings().ledger
    assert ledger.transaction_attempts == 3
    assert ledger.idempotency.retention_seconds == 24 * 3600
    assert ledger.idempotency.cleanup_interval_seconds == 300
    assert ledger.idempotency.cleanup_batch_size == 1000


def test_retention_can_be_set_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_DATABASE__URL", "postgresql://u@127.0.0.1/db")
    monkeypatch.setenv("APP_LEDGER__IDEMPOTENCY__RETENTION_SECONDS", "3600")
    assert load_settings().ledger.idempotency.retention_seconds == 3600


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        (
            "APP_LEDGER__IDEMPOTENCY__RETENTION_SECONDS",
            "0",
            r"ledger\.idempotency\.retention_seconds",
        ),
        (
            "APP_LEDGER__IDEMPOTENCY__CLEANUP_BATCH_SIZE",
            "-5",
            r"ledger\.idempotency\.cleanup_batch_size",
        ),
        ("APP_LEDGER__TRANSACTION_ATTEMPTS", "0", r"ledger\.transaction_attempts"),
    ],
)
def test_a_bad_value_names_its_key(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, key: str
) -> None:
    monkeypatch.setenv("APP_DATABASE__URL", "postgresql://u@127.0.0.1/db")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=key):
        load_settings()
