"""Logs are Bunyan JSON, for structlog events and standard-library loggers alike."""

from __future__ import annotations

import io
import json
import logging
import os
import socket

import pytest
import structlog
from structlog.typing import EventDict, WrappedLogger

from {{ cookiecutter.package_name }}.configuration import LoggingSettings
from {{ cookiecutter.package_name }}.log_writer import LogWriter
from {{ cookiecutter.package_name }}.telemetry import (
    RequestLine,
    bind_request_field,
    configure_logging,
    finish_logging,
    start_request_fields,
)

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


def _request_lines(level: str) -> list[str]:
    """The request line written by configure_logging's RequestLine, then by structlog's
    logger with the same arguments, with a request's fields and a structlog context
    variable bound."""
    stream = io.StringIO()
    request_line = configure_logging(LoggingSettings(level=level), "svc", stream)
    start_request_fields("req-1")
    bind_request_field("subject", "alice")
    structlog.contextvars.bind_contextvars(job="j-7", request_id="not this one")
    arguments = {"method": "POST", "path": "/v1/things", "status": 201, "duration_ms": 1.25}
    try:
        request_line(**arguments)  # type: ignore[arg-type]
        structlog.get_logger("http").info("request finished", **arguments)
    finally:
        structlog.contextvars.clear_contextvars()
        start_request_fields("")
        finish_logging()
    return stream.getvalue().splitlines()


def test_the_request_line_is_the_one_structlog_writes() -> None:
    fast, structlogs = (json.loads(line) for line in _request_lines("info"))
    # The same fields in the same order, with the same values but the time's.
    assert list(fast) == list(structlogs)
    assert str(fast.pop("time")).endswith("Z")
    structlogs.pop("time")
    assert fast == structlogs
    assert (fast["request_id"], fast["subject"], fast["job"]) == ("req-1", "alice", "j-7")


def test_the_request_line_follows_the_level() -> None:
    assert _request_lines("warning") == []


def test_a_request_line_keeps_its_configuration_when_logging_is_configured_again() -> None:
    """Each app (a test's, say) logs its requests as its own settings say, to its own
    stream, however many apps configured logging after it in the same process."""
    first, second = io.StringIO(), io.StringIO()
    request_line = configure_logging(LoggingSettings(level="info"), "first", first)
    configure_logging(LoggingSettings(level="warning"), "second", second)
    try:
        request_line("GET", "/health/live", 200, 0.5)
    finally:
        finish_logging()
    assert [json.loads(line)["name"] for line in first.getvalue().splitlines()] == ["first"]
    assert second.getvalue() == ""


def test_a_processor_may_drop_the_request_line_as_structlog_allows() -> None:
    """A filtering processor (a team's, say) raises DropEvent: the line is not written,
    and the request goes on, as structlog's own processor loop does."""

    def drop(_logger: WrappedLogger, _method: str, _event: EventDict) -> EventDict:
        raise structlog.DropEvent

    stream = io.StringIO()
    writer = LogWriter(stream, on_dropped=lambda _count: None)
    try:
        RequestLine([drop], writer, enabled=True)("GET", "/health/live", 200, 0.5)
    finally:
        writer.close()
    assert stream.getvalue() == ""
