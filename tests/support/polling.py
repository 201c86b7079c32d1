"""Waiting for something to become true: a server to answer, a state to be reached."""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


def wait_until(
    condition: Callable[[], bool],
    seconds: float,
    what: str,
    *,
    process: subprocess.Popen[Any] | None = None,
    output: Callable[[], str] = str,
    interval: float = 0.1,
) -> None:
    """Until `condition()` holds; fails after `seconds`, or at once if `process` (the
    server being waited for) has exited, with its `output()`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert process is None or process.poll() is None, f"{what}: it exited\n{output()}"
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}\n{output()}"
        time.sleep(interval)


def wait_until_answering(
    url: str,
    seconds: float,
    what: str,
    *,
    process: subprocess.Popen[Any],
    output: Callable[[], str],
    interval: float = 0.1,
) -> None:
    """Until a GET of `url` answers 200: a server `process` has started (its `output`
    shown if it exits or never answers)."""
    wait_until(
        lambda: answers_200(url), seconds, what, process=process, output=output, interval=interval
    )


async def until(condition: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    """`wait_until` inside an event loop, for an async condition."""
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.05)


def answers_200(url: str) -> bool:
    """A GET of `url` answers 200 (within 2 s)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_until_quiet(path: Path, quiet_seconds: float, at_most_seconds: float) -> None:
    """Until the file has stopped growing for `quiet_seconds`: its writer has caught up."""
    deadline = time.monotonic() + at_most_seconds
    size, since = -1, time.monotonic()
    while time.monotonic() - since < quiet_seconds:
        assert time.monotonic() < deadline, f"{path} still growing after {at_most_seconds} s"
        if (current := path.stat().st_size) != size:
            size, since = current, time.monotonic()
        time.sleep(0.1)
