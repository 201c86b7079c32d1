"""Structured logs: one JSON object per line in Bunyan's format, for every logger.

structlog renders our own events and writes them itself: the request log runs on
every request, and the standard library's logging (LogRecord, handler lock,
formatter) would cost it about twice as much (bench/, README "Performance"). The
standard library's loggers (uvicorn, asyncpg, alembic) go through the same
processors in a ProcessorFormatter, so `bunyan` can pretty-print the whole stream
and a log pipeline can parse every line.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from .configuration import LoggingSettings

# Bunyan's numeric levels: https://github.com/trentm/node-bunyan#levels
BUNYAN_LEVELS = {"debug": 20, "info": 30, "warning": 40, "error": 50, "critical": 60}


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


def _serialize(data: Any, **_: Any) -> str:
    return orjson.dumps(data, default=str).decode()


def configure_logging(settings: LoggingSettings, name: str) -> None:
    """Route structlog and the standard library's logging to Bunyan JSON on stdout."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        structlog.processors.format_exc_info,
        BunyanFields(name),
    ]
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer(serializer=_serialize)],
        logger_factory=structlog.WriteLoggerFactory(sys.stdout),
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
    handler = logging.StreamHandler(sys.stdout)
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
