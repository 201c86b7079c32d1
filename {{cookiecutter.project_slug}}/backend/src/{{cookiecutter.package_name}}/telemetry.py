"""Structured logs: one JSON object per line in Bunyan's format, for every logger.

structlog renders our own events and writes them itself: the request log runs on
every request, and the standard library's logging (LogRecord, handler lock,
formatter) would cost it about twice as much CPU per logged request (measured
in process). The standard library's loggers (uvicorn, asyncpg, alembic) go
through the same processors in a ProcessorFormatter, so `bunyan` can pretty-print
the whole stream and a log pipeline can parse every line. Both write through one
LogWriter, whose thread does the writing (log_writer.py): a slow stdout never
stalls a request.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from .configuration import LoggingSettings
from .log_writer import LogWriter

# Bunyan's numeric levels: https://github.com/trentm/node-bunyan#levels
BUNYAN_LEVELS = {"debug": 20, "info": 30, "warning": 40, "error": 50, "critical": 60}

# The fields every log line of a request carries (its id, then its caller's subject):
# one dict per request, that whoever learns a field joins with a dict assignment.
# Cheaper than structlog's bind_contextvars on the request path, which sets one
# ContextVar per key and, to start clean, walks the whole context per request
# (callgrind, a cached token's account read: about 1.6 of the 5 % it cost over
# auth=none). structlog's contextvars stay merged too, for the worker's jobs.
_REQUEST_FIELDS: ContextVar[dict[str, Any] | None] = ContextVar("request_fields", default=None)


def start_request_fields(request_id: str) -> None:
    """The request's fields, starting with its id (RequestContextMiddleware, per request)."""
    _REQUEST_FIELDS.set({"request_id": request_id})


def bind_request_field(key: str, value: Any) -> None:
    """One more field on the current request's log lines (none outside a request)."""
    fields = _REQUEST_FIELDS.get()
    if fields is not None:
        fields[key] = value


def request_field(key: str) -> Any:
    """A field of the current request, or None."""
    fields = _REQUEST_FIELDS.get()
    return None if fields is None else fields.get(key)


def merge_request_fields(
    _logger: WrappedLogger, _method_name: str, event_dict: EventDict
) -> EventDict:
    """A processor: the request's fields, unless the event names them itself."""
    fields = _REQUEST_FIELDS.get()
    if fields is not None:
        for key, value in fields.items():
            event_dict.setdefault(key, value)
    return event_dict


class BunyanFields:
    """Adds the fields Bunyan requires: v, name, hostname, pid, numeric level, msg."""

    def __init__(self, name: str) -> None:
        self._static = {"v": 0, "name": name, "hostname": socket.gethostname()}

    def __call__(
        self, _logger: WrappedLogger, method_name: str, event_dict: EventDict
    ) -> EventDict:
        level_name = event_dict.pop("level", method_name)
        event_dict["level"] = BUNYAN_LEVELS.get(level_name, 30)
        event_dict["msg"] = event_dict.pop("event", "")
        event_dict["pid"] = os.getpid()
        event_dict.update(self._static)
        return event_dict


class UtcTimestamp:
    """structlog's TimeStamper(fmt="iso", utc=True), the same text (2026-01-02T03:04:05.123456Z,
    no fraction at a whole second, as datetime.isoformat) at a third of its cost: the
    date and time to the second are formatted once a second, not a datetime per line
    (timeit: 3.1 µs a line, a quarter of the request line's cost)."""

    def __init__(self, key: str, clock: Callable[[], int] = time.time_ns) -> None:
        self._key = key
        self._clock = clock
        # (second, its text), replaced as one: lines of other threads may read it.
        self._second: tuple[int, str] = (-1, "")

    def __call__(
        self, _logger: WrappedLogger, _method_name: str, event_dict: EventDict
    ) -> EventDict:
        second, nanoseconds = divmod(self._clock(), 1_000_000_000)
        cached = self._second
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached
        # Truncated to the microsecond, as datetime.now() is.
        microseconds = nanoseconds // 1000
        fraction = f".{microseconds:06d}" if microseconds else ""
        event_dict[self._key] = f"{cached[1]}{fraction}Z"
        return event_dict


def _serialize(data: Any, **_: Any) -> str:
    return orjson.dumps(data, default=str).decode()


# The writer in use: configuring logging again (each worker's create_app, after
# __main__) closes it first, so its queued lines come before the new writer's.
_writer: LogWriter | None = None


class RequestLine:
    """Writes a request's line: what `structlog.get_logger().info("request finished",
    method=..., ...)` writes, through the same processors to the same writer, without
    structlog's bound logger around them (the level check, the event dict's copy, the
    processor loop's checks, WriteLogger's lock and its two retried calls per line):
    a third of the line's cost, which is the largest single item of a read."""

    def __init__(self, processors: list[Processor], writer: LogWriter, *, enabled: bool) -> None:
        self._processors = processors
        self._writer = writer
        self.enabled = enabled

    def __call__(self, method: str, path: str, status: int, duration_ms: float) -> None:
        if not self.enabled:
            return
        event: Any = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "event": "request finished",
        }
        try:
            for processor in self._processors:
                event = processor(None, "info", event)
        except structlog.DropEvent:
            return  # a filtering processor dropped it, as structlog's own loop allows
        self._writer.write(event + "\n")


def _report_dropped(count: int) -> None:
    structlog.get_logger("telemetry").warning("log lines dropped: stdout was stuck", count=count)


def configure_logging(
    settings: LoggingSettings, name: str, stream: TextIO | None = None
) -> RequestLine:
    """Route structlog and the standard library's logging to Bunyan JSON on `stream`
    (stdout by default), written by a LogWriter's thread. Returns the request line
    of this configuration, for create_app to hand to RequestContextMiddleware."""
    global _writer  # noqa: PLW0603 - one writer per process, replaced as a whole
    if _writer is not None:
        _writer.close()
    _writer = writer = LogWriter(
        stream or sys.stdout,
        on_dropped=_report_dropped,
        flush_interval_seconds=settings.flush_interval_seconds,
    )
    shared: list[Processor] = [
        merge_request_fields,
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        UtcTimestamp(key="time"),
        structlog.processors.format_exc_info,
        BunyanFields(name),
    ]
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    renderer = structlog.processors.JSONRenderer(serializer=_serialize)
    processors: list[Processor] = [*shared, renderer]
    request_line = RequestLine(processors, writer, enabled=level <= logging.INFO)
    structlog.configure(
        processors=processors,
        # Typed for a TextIO; WriteLogger only calls write and flush, which LogWriter has.
        logger_factory=structlog.WriteLoggerFactory(writer),  # type: ignore[arg-type]
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared[:-2],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *shared[-2:],
            structlog.processors.JSONRenderer(serializer=_serialize),
        ],
    )
    handler = logging.StreamHandler(writer)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Not "uvicorn.access": __main__ turns uvicorn's access log off, as
    # RequestContextMiddleware already logs each request once, with its request id
    # and duration. Letting it propagate here would log every request twice.
    for uvicorn_logger in ("uvicorn", "uvicorn.error"):
        logging.getLogger(uvicorn_logger).handlers.clear()
        logging.getLogger(uvicorn_logger).propagate = True
    return request_line


def finish_logging() -> None:
    """Write every queued line and stop the writer thread; lines logged later are
    written at once. The app calls it when it shuts down: uvicorn re-raises SIGTERM
    once it has drained, so a worker exits by that signal, without atexit."""
    if _writer is not None:
        _writer.close()
