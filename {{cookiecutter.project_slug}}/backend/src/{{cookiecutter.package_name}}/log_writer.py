"""Log lines written by a thread of their own, so logging never blocks the event loop.

stdout is often a pipe to a log collector; when the collector falls behind, the
pipe fills and a plain `write` waits, with every request of the worker behind it.
Here a write only appends the line to a deque; a daemon thread wakes every
FLUSH_INTERVAL_SECONDS (or once WAKE_AT_LINES are waiting) and writes what has
gathered in one system call. If the stream stays stuck until MAX_QUEUED_LINES are
waiting, newer lines are dropped and counted, and the count is logged once the
stream moves again.

Hand-written: the standard library's QueueHandler would route structlog's events
through LogRecords again, the cost telemetry.py avoids, and a queue.Queue costs a
lock and a thread wake-up per line, where a deque append costs neither (both were
measured: the template's README, "Performance").
"""

from __future__ import annotations

import atexit
import threading
from collections import deque
from collections.abc import Callable
from typing import TextIO

MAX_QUEUED_LINES = 10_000
WAKE_AT_LINES = 1_000
FLUSH_INTERVAL_SECONDS = 0.05
CLOSE_TIMEOUT_SECONDS = 5.0


class LogWriter:
    """A file-like sink for structlog's WriteLogger and logging.StreamHandler."""

    def __init__(
        self,
        stream: TextIO,
        on_dropped: Callable[[int], None],
        max_queued_lines: int = MAX_QUEUED_LINES,
    ) -> None:
        self._stream = stream
        self._on_dropped = on_dropped
        self._max_queued_lines = max_queued_lines
        # deque.append and popleft are atomic: the writing threads and the writer
        # thread share it without a lock.
        self._lines: deque[str] = deque()
        self._dropped = 0
        self._dropped_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._closed = False
        self._thread = threading.Thread(target=self._write_batches, name="log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def write(self, text: str) -> int:
        if self._closed:  # shutting down: no thread left, and no hurry
            self._write_now([text])
            return len(text)
        queued = len(self._lines)
        if queued < self._max_queued_lines:
            self._lines.append(text)
            if queued == WAKE_AT_LINES:  # a burst: write it now, not at the next tick
                self._wake.set()
        else:
            with self._dropped_lock:
                self._dropped += 1
        return len(text)

    def flush(self) -> None:
        """Nothing to do here: the writer thread flushes after every batch."""

    def close(self) -> None:
        """Write what is queued and stop the thread; later lines are written at once."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout=CLOSE_TIMEOUT_SECONDS)
        self._closed = True
        self._write_queued()  # a line that came in while the thread was stopping
        # Nothing left to do at exit; and a replaced writer (each test's app) is freed.
        atexit.unregister(self.close)

    def _write_batches(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL_SECONDS)
            self._wake.clear()
            closing = self._closing
            self._write_queued()
            with self._dropped_lock:
                dropped, self._dropped = self._dropped, 0
            if dropped:
                self._on_dropped(dropped)  # queues its own line
                self._write_queued()
            if closing:
                return

    def _write_queued(self) -> None:
        # Only what is there now: lines appended meanwhile wait for the next round.
        batch = [self._lines.popleft() for _ in range(len(self._lines))]
        if batch:
            self._write_now(batch)

    def _write_now(self, batch: list[str]) -> None:
        try:
            self._stream.write("".join(batch))
            self._stream.flush()
        except (OSError, ValueError):
            pass  # stdout closed or gone: nowhere left to report it
