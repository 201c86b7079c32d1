"""Logs are Bunyan JSON, for structlog events and standard-library loggers alike."""

from __future__ import annotations

import io
import json
import logging
import os
import socket

import pytest
import structlog

from {{ cookiecutter.package_name }}.configuration import LoggingSettings
from {{ cookiecutter.package_name }}.telemetry import configure_logging, finish_logging

BUNYAN_FIELDS = {"v", "name", "msg", "level", "time", "hostname", "pid"}


@pytest.fixture
def log_lines() -> list[dict[str, object]]:
    stream = io.StringIO()
    configure_logging(LoggingSettings(level="info"), "svc", stream)
    structlog.contextvars.bind_contextvars(request_id="abc123")
    try:
        structlog.get_logger("test").info("hello", answer=42)
        logging.getLogger("uvicorn.error").warning("from the standard library")
        structlog.get_logger("test").debug("below the level")
    finally:
        structlog.contextvars.clear_contextvars()
        finish_logging()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_is_bunyan_json(log_lines: list[dict[str, object]]) -> None:
    assert len(log_lines) == 2
    for line in log_lines:
        assert line.keys() >= BUNYAN_FIELDS
        assert line["v"] == 0
        assert line["name"] == "svc"
        assert line["pid"] == os.getpid()
        assert line["hostname"] == socket.gethostname()
        assert str(line["time"]).endswith("Z")


def test_levels_are_bunyan_numbers_and_context_is_bound(
    log_lines: list[dict[str, object]],
) -> None:
    ours, theirs = log_lines
    assert (ours["msg"], ours["level"], ours["answer"]) == ("hello", 30, 42)
    assert (theirs["msg"], theirs["level"]) == ("from the standard library", 40)
    assert ours["request_id"] == theirs["request_id"] == "abc123"
