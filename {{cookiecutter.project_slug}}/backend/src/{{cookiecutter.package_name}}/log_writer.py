"""Log lines written by a thread of their own, so logging never blocks the event loop.

stdout is often a pipe to a log collector; when the collector falls behind, the
pipe fills and a plain `write` waits, with every request of the worker behind it.
Here a write only appends the line to a deque; a daemon thread wakes every
FLUSH_INTERVAL_SECONDS (or once WAKE_AT_LINES are waiting) and writes what has
gathered. If the stream stays stuck until MAX_QUEUED_LINES are waiting, newer lines
are dropped and counted, and the count is logged once the stream moves again.

Several workers share one stdout pipe, and a write to a pipe is atomic only up to
PIPE_BUF bytes: a longer one (a traceback) enters a full pipe in parts, and another
worker's write could land between them. So each batch is written under a POSIX
record lock on stdout that every writing process takes, and the writer thread waits
for it as long as it takes (it is a background thread: no request waits with it).
The batch is encoded before the lock is asked for, and the lock is held for at
most HOLD_BYTES of it at a time: behind a slow reader, a worker with thousands of
lines queued would otherwise hold it for as long as they take to read (a minute at
200 KB/s), and the other worker's lines would wait as long, or be dropped.

Only close() waits at most LOCK_WAIT_SECONDS, for the lock and for room in the
pipe, so that the process's exit never hangs on another process (stuck, or not one
of ours) nor on a reader that stopped: the lines it writes then, after that wait,
may be torn, and those the pipe has no room for are lost. Where the lock cannot be
had at all (a terminal or a file system without record locks), lines are written
without it.

Hand-written: the standard library's QueueHandler would route structlog's events
through LogRecords again, the cost telemetry.py avoids, and a queue.Queue costs a
lock and a thread wake-up per line, where a deque append costs neither (measured
in process: the queue cost 20-90 µs more per request).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
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
# How long close() waits for the lock (another process writing its batch, or stuck)
# before it writes its last lines without it: the process's exit must not hang.
LOCK_WAIT_SECONDS = 2.0
LOCK_POLL_SECONDS = 0.001
# The writer thread lets go of the lock after this much of a batch (the capacity of
# a Linux pipe), and waits LOCK_YIELD_SECONDS before it asks again: the kernel wakes
# a process waiting for the lock when it is let go, but one asking again at once
# would mostly take it first (measured: the other worker's lines then waited until
# the end of the run, 269 of 300 not there after 35 s).
HOLD_BYTES = 65_536
LOCK_YIELD_SECONDS = 0.001


class LogWriter:
    """A file-like sink for structlog's WriteLogger and logging.StreamHandler."""

    def __init__(
        self,
        stream: TextIO,
        on_dropped: Callable[[int], None],
        max_queued_lines: int = MAX_QUEUED_LINES,
        flush_interval_seconds: float = FLUSH_INTERVAL_SECONDS,
    ) -> None:
        self._stream = stream
        self._flush_interval = flush_interval_seconds
        self._fd = _file_descriptor(stream)
        self._on_dropped = on_dropped
        self._max_queued_lines = max_queued_lines
        # deque.append and popleft are atomic: the writing threads and the writer
        # thread share it without a lock.
        self._lines: deque[str] = deque()
        self._dropped = 0
        self._dropped_lock = threading.Lock()
        self._wake = threading.Event()
        # The record lock belongs to the process, not the thread: close() and the
        # writer thread also exclude each other with this one.
        self._writing = threading.Lock()
        self._closing = False
        self._closed = False
        self._thread = threading.Thread(target=self._write_batches, name="log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def write(self, text: str) -> int:
        if self._closed:  # shutting down: no thread left, and no hurry
            self._write_now([text], LOCK_WAIT_SECONDS)
            return len(text)
        queued = len(self._lines)
        # The writer thread's own line, the count of those dropped (on_dropped), is
        # never dropped: the queue is mostly full when it is written.
        if queued < self._max_queued_lines or threading.get_ident() == self._thread.ident:
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
        # A line that came in while the thread was stopping; or all that is left, if
        # the thread is still stuck (a full pipe, another process holding the lock).
        self._write_queued(LOCK_WAIT_SECONDS)
        # Nothing left to do at exit; and a replaced writer (each test's app) is freed.
        atexit.unregister(self.close)

    def _write_batches(self) -> None:
        while True:
            self._wake.wait(self._flush_interval)
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

    def _write_queued(self, lock_wait: float | None = None) -> None:
        # Only what is there now: lines appended meanwhile wait for the next round.
        batch = [self._lines.popleft() for _ in range(len(self._lines))]
        if batch:
            self._write_now(batch, lock_wait)

    def _write_now(self, batch: list[str], lock_wait: float | None) -> None:
        """Writes the batch under the lock, waiting for it and for the pipe as long as
        it takes (None: the writer thread) or at most `lock_wait` seconds in all
        (close(), and after it)."""
        deadline = None if lock_wait is None else time.monotonic() + lock_wait
        try:
            if self._fd is None:  # not a file (a test's StringIO): no one to interleave with
                with self._writing:
                    self._stream.write("".join(batch))
                    self._stream.flush()
                return
            holds = list(_holds(_whole_lines(batch)))  # before the lock: held to write only
            for number, chunks in enumerate(holds):
                if number:
                    time.sleep(LOCK_YIELD_SECONDS)  # the other worker's turn
                # close() takes the thread's lock for LOCK_WAIT_SECONDS at most: a
                # thread stuck in a write must not hang the exit.
                with (
                    _held(self._writing, _left(deadline)),
                    _exclusive(self._fd, _left(deadline)),
                ):
                    if not number:  # anything written to the stream itself comes first
                        self._stream.flush()
                    for chunk in chunks:
                        _write_whole(self._fd, chunk, deadline)
        except (OSError, ValueError):
            pass  # stdout closed, gone or stuck past the deadline: nowhere to report it


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _write_whole(fd: int, chunk: bytes, deadline: float | None) -> None:
    """Writes the chunk, waiting for room as long as it takes (deadline None) or
    until the deadline (TimeoutError): then in parts of PIPE_BUF bytes, each after
    select() saw room, which a pipe then takes without waiting."""
    view = memoryview(chunk)
    while view:  # a pipe takes a chunk of PIPE_BUF bytes or less whole
        if deadline is not None:
            if not select.select([], [fd], [], _left(deadline))[1]:
                raise TimeoutError
            view = view[os.write(fd, view[: select.PIPE_BUF]) :]
            continue
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            # A non-blocking pipe (the flag is shared with whoever set it)
            # refuses rather than waits when full: wait for room here.
            select.select([], [fd], [])


@contextlib.contextmanager
def _held(lock: threading.Lock, seconds: float | None) -> Iterator[None]:
    locked = lock.acquire(timeout=-1 if seconds is None else seconds)
    try:
        yield
    finally:
        if locked:
            lock.release()


@contextlib.contextmanager
def _exclusive(fd: int, seconds: float | None) -> Iterator[None]:
    """The other processes writing to `fd` wait until the block ends. A POSIX record
    lock: it works on pipes, and it excludes processes that inherited the same stdout
    (flock would not: they share one open file). On a regular file it covers the
    whole file (offset 0, length 0: to any end), wherever the file's offset is.
    Waited for as long as it takes (seconds=None) or at most `seconds`; where it
    cannot be taken (a terminal or file system without record locks: ENOLCK,
    EINVAL...), the block runs without it, as it does after that wait."""
    locked = _lock(fd) if seconds is None else _lock_within(fd, seconds)
    try:
        yield
    finally:
        if locked:
            fcntl.lockf(fd, fcntl.LOCK_UN)


def _lock(fd: int) -> bool:
    try:
        # F_SETLKW: the kernel wakes us when the holder lets go. An interrupting
        # signal (EINTR) is retried by Python itself (PEP 475).
        fcntl.lockf(fd, fcntl.LOCK_EX)
    except OSError as error:
        if error.errno == errno.EDEADLK:
            # The kernel saw (or, with threads, thought it saw) a cycle of processes
            # waiting for each other's locks: wait by polling instead, boundedly.
            return _lock_within(fd, LOCK_WAIT_SECONDS)
        return False
    return True


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


def _holds(chunks: Iterator[bytes]) -> Iterator[list[bytes]]:
    """The chunks in groups of at most HOLD_BYTES (or one longer chunk): what is
    written in one hold of the lock."""
    group: list[bytes] = []
    size = 0
    for chunk in chunks:
        if group and size + len(chunk) > HOLD_BYTES:
            yield group
            group, size = [], 0
        group.append(chunk)
        size += len(chunk)
    if group:
        yield group


def _whole_lines(lines: list[str]) -> Iterator[bytes]:
    """The lines, encoded, joined into chunks of at most PIPE_BUF bytes that each
    end at the end of a line (or hold one longer line): fewer, larger writes."""
    chunk = bytearray()
    for line in lines:
        data = line.encode("utf-8", "backslashreplace")
        if chunk and len(chunk) + len(data) > select.PIPE_BUF:
            yield bytes(chunk)
            chunk.clear()
        chunk += data
    if chunk:
        yield bytes(chunk)
