"""`python -m {{ cookiecutter.package_name }}`: serve the API with uvicorn (uvloop, httptools)."""

from __future__ import annotations

import sys

import uvicorn

from .configuration import ConfigurationError, load_settings
from .telemetry import configure_logging


def main() -> None:
    try:
        settings = load_settings()
    except ConfigurationError as error:
        print(f"{{ cookiecutter.package_name }}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.logging, settings.application.name)
    uvicorn.run(
        "{{ cookiecutter.package_name }}.startup:create_app",
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        workers=settings.server.workers,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=settings.server.graceful_shutdown_seconds,
    )


if __name__ == "__main__":
    main()
