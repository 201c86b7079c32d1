"""Log lines written by a thread of their own, so logging never blocks the event loop.

stdout is often a pipe to a log collector; when the collector falls behind, the
pipe fills and a plain `write` waits, with every request of the worker behind it.
Here a write only appends the line to a deque; a daemon thread wakes every
FLUSH_INTERVAL_SECONDS (or once WAKE_AT_LINES are waiting) and writes what has
gathered. If the stream stays stuck until MAX_QUEUED_LINES are waiting, newer lines
are dropped and counted, and the count is logged once the stream moves again.

Several workers share one stdout pipe, and a write to a pipe is atomic only up to
PIPE_BUF bytes: a longer one can be cut and interleaved with another worker's when
the reader falls behind. So a batch goes to the file descriptor in writes of whole
lines, each at most PIPE_BUF bytes; a single longer line (a traceback) is kept whole
by a lock the writing processes take around each chunk.

Hand-written: the standard library's QueueHandler would route structlog's events
through LogRecords again, the cost telemetry.py avoids, and a queue.Queue costs a
lock and a thread wake-up per line, where a deque append costs neither (measured
in process: the queue cost 20-90 µs more per request).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import io
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TextIO

MAX_QUEUED_LINES = 10_000
WAKE_AT_LINES = 1_000
FLUSH_INTERVAL_SECONDS = 0.05
CLOSE_TIMEOUT_SECONDS = 5.0
# Another process holds the lock while one chunk enters the pipe: longer than this
# (stuck, or not one of ours), and the chunk is written without it. Well below
# CLOSE_TIMEOUT_SECONDS, so that close() still sees the last lines written.
LOCK_WAIT_SECONDS = 2.0
LOCK_POLL_SECONDS = 0.001


class LogWriter:
    """A file-like sink for structlog's WriteLogger and logging.StreamHandler."""

    def __init__(
        self,
        stream: TextIO,
        on_dropped: Callable[[int], None],
        max_queued_lines: int = MAX_QUEUED_LINES,
    ) -> None:
        self._stream = stream
        self._fd = _file_descriptor(stream)
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
            if self._fd is None:  # not a file (a test's StringIO): no one to interleave with
                self._stream.write("".join(batch))
                self._stream.flush()
                return
            self._stream.flush()  # anything written to the stream itself comes first
            for chunk in _whole_lines(batch):
                # Per chunk, not per batch: another process waits for one chunk
                # (at most one long line) to enter the pipe, not for our whole batch.
                with _exclusive(self._fd):
                    _write_whole(self._fd, chunk)
        except (OSError, ValueError):
            pass  # stdout closed or gone: nowhere left to report it


def _write_whole(fd: int, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:  # a pipe takes a chunk of PIPE_BUF bytes or less whole
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            # A non-blocking pipe (the flag is shared with whoever set it)
            # refuses rather than waits when full: wait for room here.
            select.select([], [fd], [])


@contextlib.contextmanager
def _exclusive(fd: int) -> Iterator[None]:
    """A line longer than PIPE_BUF (a traceback, say) enters a full pipe in parts;
    the other processes writing to it wait for the last part. A POSIX record lock:
    it works on pipes, and it excludes processes that inherited the same stdout
    (flock would not: they share one open file). Where it cannot be taken (a
    terminal, say), or another process holds it for LOCK_WAIT_SECONDS (stuck, or
    not ours), the chunk is written without it: a line torn now and then is better
    than a writer, and the process's exit, waiting forever."""
    locked = _lock_within(fd, LOCK_WAIT_SECONDS)
    try:
        yield
    finally:
        if locked:
            fcntl.lockf(fd, fcntl.LOCK_UN)


def _lock_within(fd: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):  # held elsewhere (EAGAIN or EACCES)
            if time.monotonic() >= deadline:
                return False
            time.sleep(LOCK_POLL_SECONDS)
        except OSError:
            return False
        else:
            return True


def _file_descriptor(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def _whole_lines(lines: list[str]) -> Iterator[bytes]:
    """The lines, encoded, joined into chunks of at most PIPE_BUF bytes that each
    end at the end of a line."""
    chunk = bytearray()
    for line in lines:
        data = line.encode("utf-8", "backslashreplace")
        if chunk and len(chunk) + len(data) > select.PIPE_BUF:
            yield bytes(chunk)
            chunk.clear()
        chunk += data
    if chunk:
        yield bytes(chunk)
