"""Layered settings: configuration/base.yaml, then configuration/<APP_ENVIRONMENT>.yaml,
then APP_* environment variables ("__" separates nested keys), each overriding the last."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PostgresDsn,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from .log_writer import FLUSH_INTERVAL_SECONDS

Environment = Literal["local", "test", "production"]
ENVIRONMENTS: tuple[Environment, ...] = ("local", "test", "production")
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parents[2] / "configuration"
# A browser origin as browsers send it in the Origin header: scheme, lowercase host,
# optional port, nothing after. CORS compares origins as strings, so "…/" or a path
# would never match; they are refused here instead of failing silently.
ORIGIN = re.compile(r"https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?")


class ConfigurationError(Exception):
    """The configuration cannot be loaded; the message names every offending key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApplicationSettings(_Section):
    name: str = Field(min_length=1)
    docs_enabled: bool = False
    opentelemetry: bool = False


class ServerSettings(_Section):
    host: str
    port: int = Field(ge=1, le=65535)
    workers: int = Field(ge=1, le=64)
    graceful_shutdown_seconds: int = Field(ge=1)
    # uvicorn's timeout_keep_alive: above the idle timeout of the proxy in front.
    keep_alive_seconds: int = Field(ge=1, le=3600)


class HttpSettings(_Section):
    """Limits and headers every request gets (handlers/limits.py, handlers/request_context.py)."""

    max_body_bytes: int = Field(ge=0)
    request_timeout_seconds: float = Field(gt=0)
    hsts_max_age_seconds: int = Field(ge=0)
    hsts_always: bool = False
    hsts_include_subdomains: bool = False


class MetricsSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=1, le=65535)
    pool_sample_seconds: float = Field(gt=0)


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    # How often the log writer's thread writes what has gathered (sooner once a
    # thousand lines wait): a line reaches stdout at most this late.
    flush_interval_seconds: float = Field(default=FLUSH_INTERVAL_SECONDS, gt=0)


class PoolSettings(_Section):
    min_size: int = Field(ge=0)
    max_size: int = Field(ge=1)
    max_lifetime_seconds: float = Field(gt=0)
    acquire_timeout_seconds: float = Field(gt=0)
    command_timeout_seconds: float = Field(gt=0)
    statement_cache_size: int = Field(ge=0)

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Self:
        if self.min_size > self.max_size:
            msg = f"min_size ({self.min_size}) must not exceed max_size ({self.max_size})"
            raise ValueError(msg)
        return self


def _origin(value: str) -> str:
    if not ORIGIN.fullmatch(value):
        msg = (
            f"{value!r} is not an origin; accepted: scheme://host[:port] in lowercase with "
            "no path or trailing slash, such as https://console.example.com"
        )
        raise ValueError(msg)
    return value


class CorsSettings(_Section):
    """Browser origins (a frontend on another origin) allowed to call the API."""

    allowed_origins: tuple[Annotated[str, AfterValidator(_origin)], ...] = ()


class BudgetSettings(_Section):
    """The live connection-budget check (db/budget.py)."""

    replicas: int = Field(ge=1)
    check_interval_seconds: float = Field(gt=0)


class DatabaseSettings(_Section):
    url: SecretStr
    statement_timeout_ms: int = Field(ge=1)
    idle_in_transaction_session_timeout_ms: int = Field(ge=1)
    migration_lock_timeout_ms: int = Field(ge=1)
    migration_statement_timeout_ms: int = Field(ge=1)
    ready_timeout_seconds: float = Field(gt=0)
    pool: PoolSettings
    budget: BudgetSettings

    @model_validator(mode="after")
    def _url_is_postgres(self) -> Self:
        # Validated here rather than typed as PostgresDsn so the URL, which may
        # hold a password, stays a SecretStr everywhere else.
        PostgresDsn(self.url.get_secret_value())
        return self


{% if cookiecutter.auth != "none" -%}
{% if cookiecutter.auth in ["oidc", "both"] -%}
# Asymmetric only: with HMAC the verifier's key would also sign, and a public key
# used as an HMAC secret lets anyone forge tokens; "none" is no signature at all.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")


def _algorithm(value: str) -> str:
    if value not in ALGORITHMS:
        msg = f"{value!r} is refused; accepted (asymmetric only): {', '.join(ALGORITHMS)}"
        raise ValueError(msg)
    return value


def _url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        msg = f"{value!r} is not an http(s) URL"
        raise ValueError(msg)
    return value


{% endif -%}
{% if cookiecutter.auth in ["api_key", "both"] -%}
# The pepper configuration/local.yaml and test.yaml use: public, so production refuses it.
DEVELOPMENT_PEPPER = "development pepper, never for production: set APP_AUTH__API_KEY_PEPPER"
PEPPER_MIN_LENGTH = 32


def _pepper(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) < PEPPER_MIN_LENGTH:
        msg = (
            f"must be at least {PEPPER_MIN_LENGTH} characters, "
            "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
        raise ValueError(msg)
    return value


{% endif -%}
class AuthSettings(_Section):
    """{% if cookiecutter.auth in ["oidc", "both"] %}Bearer tokens from the identity provider{% endif %}{% if cookiecutter.auth == "both" %} and {% endif %}{% if cookiecutter.auth in ["api_key", "both"] %}API keys{% endif %} (auth/): how callers are checked."""

    # A longer Authorization header is refused (401) before it is parsed.
    max_header_bytes: int = Field(ge=256, le=65_536)
{%- if cookiecutter.auth in ["oidc", "both"] %}
    # The provider's issuer URL, exactly as its tokens' `iss` claim spells it.
    issuer: Annotated[str, AfterValidator(_url)] | None = None
    audience: str = Field(min_length=1)
    algorithms: tuple[Annotated[str, AfterValidator(_algorithm)], ...] = Field(min_length=1)
    # Found through the issuer's /.well-known/openid-configuration when not given.
    jwks_url: Annotated[str, AfterValidator(_url)] | None = None
    leeway_seconds: int = Field(ge=0, le=300)
    jwks_refresh_seconds: float = Field(gt=0)
    unknown_key_refresh_seconds: float = Field(gt=0)
    jwks_timeout_seconds: float = Field(gt=0)
    jwks_max_bytes: int = Field(ge=1024, le=10_485_760)
    scopes_claim: str = Field(min_length=1)
    token_cache_size: int = Field(ge=1)
{%- endif %}
{%- if cookiecutter.auth in ["oidc", "both"] %}
    # Trust tokens from `make token` (auth/development.py): local and test only.
    development_key: bool = False
{%- endif %}
{%- if cookiecutter.auth in ["api_key", "both"] %}
    # The HMAC key of API keys' stored hashes (auth/api_keys.py); a secret, kept out
    # of the database. Changing it invalidates every key.
    api_key_pepper: Annotated[SecretStr, AfterValidator(_pepper)]
    # A revoked key is refused at the latest this long after its revocation.
    api_key_cache_seconds: float = Field(gt=0, le=300)
    api_key_cache_size: int = Field(ge=1)
    api_key_unknown_refresh_seconds: float = Field(ge=0, le=300)

{%- endif %}
{%- if cookiecutter.auth in ["oidc", "both"] %}

    @model_validator(mode="after")
    def _one_source_of_keys(self) -> Self:
        if self.development_key == (self.issuer is not None):
            msg = "set auth.issuer (the identity provider) or auth.development_key, not both"
            raise ValueError(msg)
        return self
{%- endif %}


{% endif -%}
{% if cookiecutter.example_domain == "ledger" -%}
class IdempotencySettings(_Section):
    retention_seconds: int = Field(ge=1)
    cleanup_interval_seconds: float = Field(gt=0)
    cleanup_batch_size: int = Field(ge=1, le=100_000)


class LedgerSettings(_Section):
    transaction_attempts: int = Field(ge=1, le=10)
    idempotency: IdempotencySettings


{% endif -%}
{% if cookiecutter.background_worker == "yes" -%}
class WorkerSettings(_Section):
    """`python -m {{ cookiecutter.package_name }}.worker`: the job worker's own process."""

    concurrency: int = Field(ge=1, le=1000)
    batch_size: int = Field(ge=1, le=1000)
    # A job whose worker sent no heartbeat for this long is taken over by another.
    heartbeat_timeout_seconds: float = Field(gt=0)
    # How often an idle worker polls, should a notification be missed.
    dequeue_timeout_seconds: float = Field(gt=0)
    graceful_shutdown_seconds: float = Field(gt=0)
    metrics_port: int = Field(ge=1, le=65535)
    queue_sample_seconds: float = Field(gt=0)
    # The outbox relay: how often it looks for pending events (the most it adds to a
    # delivery's latency) and how many delivery jobs it enqueues per transaction
    # (one NOTIFY each; events: as many as fit, one at least).
    relay_interval_seconds: float = Field(gt=0, le=60)
    relay_batch_size: int = Field(ge=1, le=10000)
    # Delivered (or dead, or abandoned) events, their deliveries and the queue's
    # history are deleted this long after the event; checked every interval.
    retention_seconds: float = Field(ge=60)
    cleanup_interval_seconds: float = Field(gt=0)
    cleanup_batch_size: int = Field(ge=1, le=100000)
    pool: PoolSettings
    replicas: int = Field(ge=1)


class WebhookSettings(_Section):
    connect_timeout_seconds: float = Field(gt=0)
    read_timeout_seconds: float = Field(gt=0)
    max_attempts: int = Field(ge=1, le=100)
    initial_delay_seconds: float = Field(gt=0)
    max_delay_seconds: float = Field(gt=0)
    # Off in production: no destination in private, loopback or link-local ranges.
    allow_private_destinations: bool = False


{% endif -%}
def config_dir() -> Path:
    return Path(os.environ.get("APP_CONFIG_DIR", DEFAULT_CONFIG_DIR))


def current_environment() -> str:
    return os.environ.get("APP_ENVIRONMENT", "local")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="APP_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    environment: Environment = "local"
    application: ApplicationSettings
    server: ServerSettings
    http: HttpSettings
    metrics: MetricsSettings
    logging: LoggingSettings
    cors: CorsSettings
    database: DatabaseSettings
{%- if cookiecutter.auth != "none" %}
    auth: AuthSettings
{%- endif %}
{%- if cookiecutter.example_domain == "ledger" %}
    ledger: LedgerSettings
{%- endif %}
{%- if cookiecutter.background_worker == "yes" %}
    worker: WorkerSettings
    webhooks: WebhookSettings
{%- endif %}

    @model_validator(mode="after")
    def _metrics_port_is_not_the_api_port(self) -> Self:
        if self.metrics.enabled and self.metrics.port == self.server.port:
            msg = f"metrics.port ({self.metrics.port}) must differ from server.port"
            raise ValueError(msg)
        return self
{%- if cookiecutter.background_worker == "yes" %}

    @model_validator(mode="after")
    def _deliveries_end_before_shutdown_does(self) -> Self:
        # A delivery still running when the grace period ends is left to the lease.
        longest = self.webhooks.connect_timeout_seconds + self.webhooks.read_timeout_seconds
        if longest >= self.worker.graceful_shutdown_seconds:
            msg = (
                f"webhooks.connect_timeout_seconds + webhooks.read_timeout_seconds ({longest}) "
                "must be below worker.graceful_shutdown_seconds "
                f"({self.worker.graceful_shutdown_seconds})"
            )
            raise ValueError(msg)
        return self
{%- endif %}

{%- if cookiecutter.auth in ["oidc", "both"] %}

    @model_validator(mode="after")
    def _production_trusts_no_development_key(self) -> Self:
        if self.environment == "production" and self.auth.development_key:
            msg = (
                "auth.development_key must be false in production: anyone can sign with "
                "the development key; set auth.issuer to the identity provider"
            )
            raise ValueError(msg)
        return self
{%- endif %}
{%- if cookiecutter.auth in ["api_key", "both"] %}

    @model_validator(mode="after")
    def _production_has_its_own_pepper(self) -> Self:
        if (
            self.environment == "production"
            and self.auth.api_key_pepper.get_secret_value() == DEVELOPMENT_PEPPER
        ):
            msg = (
                "auth.api_key_pepper is the public development pepper: set "
                "APP_AUTH__API_KEY_PEPPER from the secret store in production"
            )
            raise ValueError(msg)
        return self
{%- endif %}

    @model_validator(mode="after")
    def _requests_end_before_shutdown_does(self) -> Self:
        # On SIGTERM uvicorn waits graceful_shutdown_seconds for in-flight requests,
        # then cancels them (the client sees a 500): the request timeout must come first.
        timeout = self.http.request_timeout_seconds
        if timeout >= self.server.graceful_shutdown_seconds:
            msg = (
                f"http.request_timeout_seconds ({timeout}) must be below "
                f"server.graceful_shutdown_seconds ({self.server.graceful_shutdown_seconds})"
            )
            raise ValueError(msg)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        directory = config_dir()
        yaml_files = [directory / "base.yaml", directory / f"{current_environment()}.yaml"]
        layered_yaml = YamlConfigSettingsSource(settings_cls, yaml_file=yaml_files, deep_merge=True)
        return (init_settings, env_settings, layered_yaml)


def load_settings() -> Settings:
    """Read the layered settings, or raise ConfigurationError naming each bad key."""
    environment = current_environment()
    if environment not in ENVIRONMENTS:
        accepted = ", ".join(ENVIRONMENTS)
        msg = f"APP_ENVIRONMENT: {environment!r} is not an environment; accepted: {accepted}"
        raise ConfigurationError(msg)
    environment_file = config_dir() / f"{environment}.yaml"
    if not environment_file.is_file():
        msg = f"APP_ENVIRONMENT: {environment_file} does not exist"
        raise ConfigurationError(msg)
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigurationError(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for problem in error.errors(include_url=False, include_input=False):
        key = ".".join(str(part) for part in problem["loc"]) or "(root)"
        env_name = "APP_" + "__".join(str(part) for part in problem["loc"]).upper()
        lines.append(f"  {key} (or {env_name}): {problem['msg']}")
    return "\n".join(lines)
