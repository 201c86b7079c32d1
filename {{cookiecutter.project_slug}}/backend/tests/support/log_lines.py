"""The service's log lines, as a test captured them from its stdout."""

from __future__ import annotations

import json
from typing import Any

# Bunyan's level of `error`; `critical` is 60.
ERROR_LEVEL = 50


def entries_in(output: str) -> list[dict[str, Any]]:
    """The JSON lines of `output`, in order."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def errors_in(output: str) -> list[dict[str, Any]]:
    """The JSON lines of `output` at level error or above, in order."""
    return [entry for entry in entries_in(output) if entry["level"] >= ERROR_LEVEL]
