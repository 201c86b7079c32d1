"""The service's Bunyan JSON log, one object a line, read back as the tests check it."""

from __future__ import annotations

import json
from typing import Any


def json_lines(text: str, *, lenient: bool = False) -> list[dict[str, Any]]:
    """The JSON objects of a log, one a line; other lines are passed over, and a line
    that starts as an object but is not JSON fails the test (unless `lenient`: a
    container's log may hold another program's lines). Lines end at "\n" only:
    str.splitlines would also cut at U+2028 or \x85 inside a JSON string, which fuzzed
    paths put there."""
    entries = []
    for line in text.split("\n"):
        if not line.startswith("{"):
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            if not lenient:
                raise
    return entries


def json_and_torn_lines(log: bytes) -> tuple[list[dict[str, Any]], list[bytes], int]:
    """A log's lines read as JSON objects; those that are not (a line cut, or with
    another's inside it), the first 200 bytes of each; and how many lines there were."""
    lines = log.split(b"\n")[:-1]  # the last line ends with "\n": nothing after it
    entries, torn = [], []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            torn.append(line[:200])
    return entries, torn, len(lines)


def finished_requests(text: str) -> list[dict[str, Any]]:
    """The log's "request finished" entries: one per request the service answered."""
    return [entry for entry in json_lines(text) if entry.get("msg") == "request finished"]


def seconds_in_service(text: str, path: str, status: int | None = None) -> list[float]:
    """How long the service took over each request to `path` (its "request finished"
    log lines): the service's own timing, whatever the load on the test machine."""
    return [
        entry["duration_ms"] / 1000
        for entry in finished_requests(text)
        if entry["path"] == path and status in (None, entry["status"])
    ]


def errors_logged(text: str) -> list[list[str]]:
    """The last lines of each error the service logged (level 50: unhandled exceptions)."""
    return [
        entry.get("exception", entry["msg"]).splitlines()[-3:]
        for entry in json_lines(text)
        if entry["level"] == 50
    ]
