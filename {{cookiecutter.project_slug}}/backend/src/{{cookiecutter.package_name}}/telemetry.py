"""Structured logs: one JSON object per line in Bunyan's format, for every logger.

structlog renders our own events; the standard library's loggers (uvicorn,
asyncpg, alembic) go through the same processors, so `bunyan` can pretty-print
the whole stream and a log pipeline can parse every line.
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
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        structlog.processors.format_exc_info,
        BunyanFields(name),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared[:-2],
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
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
    root.setLevel(settings.level.upper())
    for uvicorn_logger in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(uvicorn_logger).handlers.clear()
        logging.getLogger(uvicorn_logger).propagate = True
