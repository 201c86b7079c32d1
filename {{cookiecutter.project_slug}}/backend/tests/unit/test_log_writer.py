"""The log writer's thread does the writing: a stuck stdout never blocks a caller."""

from __future__ import annotations

import array
import fcntl
import gc
import io
import os
import re
import select
import subprocess
import sys
import termios
import threading
import time
import weakref
from pathlib import Path

from {{ cookiecutter.package_name }}.log_writer import (
    CLOSE_TIMEOUT_SECONDS,
    LOCK_WAIT_SECONDS,
    LogWriter,
)

WAIT_SECONDS = 5.0


class StuckStream(io.StringIO):
    """A stream whose first write hangs until released, like a full pipe."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.released = threading.Event()

    def write(self, text: str) -> int:
        self.entered.set()
        self.released.wait(WAIT_SECONDS)
        return super().write(text)


def test_lines_reach_the_stream_in_order() -> None:
    stream = io.StringIO()
    writer = LogWriter(stream, on_dropped=lambda count: None)
    lines = [f"line {number}\n" for number in range(2_000)]
    for line in lines:
        writer.write(line)
    writer.close()
    assert stream.getvalue() == "".join(lines)


def test_lines_reach_a_file_descriptor_whole_and_in_order(tmp_path: Path) -> None:
    """A real file goes through its descriptor, in writes of whole lines (at most
    PIPE_BUF bytes each, so that a pipe shared by workers keeps them whole); a
    longer line still arrives whole."""
    lines = [f"line {number} {'x' * (number % 300)}\n" for number in range(2_000)]
    lines.append("y" * 10_000 + "\n")
    path = tmp_path / "log"
    with path.open("w") as stream:
        stream.write("before the writer\n")  # buffered by the stream: flushed first
        writer = LogWriter(stream, on_dropped=lambda count: None)
        for line in lines:
            writer.write(line)
        writer.close()
    assert path.read_text() == "before the writer\n" + "".join(lines)


def test_a_full_non_blocking_pipe_loses_no_line() -> None:
    """stdout may be a pipe someone set O_NONBLOCK on (the flag is shared by every
    process holding it): a full pipe then refuses the write (EAGAIN) instead of
    waiting, and the writer waits for room itself rather than lose the batch."""
    lines = [f"line {number} {'x' * 100}\n" for number in range(5_000)]
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    received = bytearray()

    def read_slowly() -> None:
        while chunk := os.read(read_end, 4_096):
            received.extend(chunk)
            time.sleep(0.002)  # a reader falling behind: the pipe fills

    reader = threading.Thread(target=read_slowly)
    reader.start()
    with os.fdopen(write_end, "w") as stream:
        writer = LogWriter(stream, on_dropped=lambda count: None)
        for line in lines:
            writer.write(line)
        writer.close()
    reader.join(WAIT_SECONDS)
    os.close(read_end)
    assert received.decode() == "".join(lines)


WRITE_LINES = """
import sys
from {{ cookiecutter.package_name }}.log_writer import LogWriter
writer = LogWriter(sys.stdout, on_dropped=lambda count: None)
name, size = sys.argv[1], int(sys.argv[2])
for number in range(200):
    writer.write(f"{name} {number} " + "x" * size + "\\n")
writer.close()
"""


def test_processes_sharing_a_pipe_keep_even_long_lines_whole() -> None:
    """Workers share stdout. A line longer than PIPE_BUF (a traceback, say) goes
    into a full pipe in parts: another process's write must not land between them."""
    read_end, write_end = os.pipe()
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITE_LINES, name, size], stdout=write_end)  # noqa: S603
        for name, size in (("long", "20000"), ("short", "100"))
    ]
    os.close(write_end)
    received = bytearray()
    while chunk := os.read(read_end, 4_096):
        received.extend(chunk)
        time.sleep(0.001)  # a reader falling behind: the pipe fills
    os.close(read_end)
    for writer in writers:
        assert writer.wait(WAIT_SECONDS) == 0
    lines = received.decode().splitlines()
    torn = [line[:40] for line in lines if not re.fullmatch(r"(long|short) \d+ x+", line)]
    assert (len(lines), torn) == (400, [])


WRITE_MIXED_LINES = """
import sys, time
from {{ cookiecutter.package_name }}.log_writer import LogWriter
writer = LogWriter(sys.stdout, on_dropped=lambda count: None)
name, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for number in range(count):
    writer.write(f"{name} {number} " + "x" * (size if number % 3 == 0 else 200) + "\\n")
    if number % 20 == 0:
        time.sleep(0.005)  # a worker's requests come over time, not all at once
sys.stdin.read()  # until all lines are read: close() gives up on a pipe still full
writer.close()
"""
MIXED_LINES = 900
READER_BYTES_PER_SECOND = 200_000
READER_BURST_SECONDS = 3.0
READ_SECONDS = 40.0


def test_processes_sharing_a_pipe_a_reader_takes_in_bursts_keep_long_lines_whole() -> None:
    """A log collector reading in bursts, seconds apart, leaves the pipe full for
    longer than anyone waits for a lock by polling: one worker is held up in the
    middle of a long line (over PIPE_BUF bytes: one in three here), and the other,
    whose lines wait meanwhile, must not write into it."""
    read_end, write_end = os.pipe()
    writers = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", WRITE_MIXED_LINES, name, str(MIXED_LINES), "6000"],
            stdin=subprocess.PIPE,
            stdout=write_end,
        )
        for name in ("first", "second")
    ]
    os.close(write_end)
    received = bytearray()
    burst = int(READER_BYTES_PER_SECOND * READER_BURST_SECONDS)
    deadline = time.monotonic() + READ_SECONDS
    try:
        while received.count(b"\n") < 2 * MIXED_LINES and time.monotonic() < deadline:
            taken = 0
            while taken < burst and select.select([read_end], [], [], 0.5)[0]:
                chunk = os.read(read_end, 4_096)
                received.extend(chunk)
                taken += len(chunk)
            time.sleep(READER_BURST_SECONDS)
    finally:
        for writer in writers:
            writer.communicate(timeout=WAIT_SECONDS * 2)
        os.close(read_end)
    lines = received.decode().splitlines()
    torn = [line[:40] for line in lines if not re.fullmatch(r"(first|second) \d+ x+", line)]
    assert torn == [], f"{len(torn)} of {len(lines)} lines torn"
    assert len(lines) == 2 * MIXED_LINES


WRITE_HEAVILY = """
import sys, time
from {{ cookiecutter.package_name }}.log_writer import LogWriter
writer = LogWriter(sys.stdout, on_dropped=lambda count: None)
for number in range(60_000):  # far more than the reader takes: the queue stays full
    writer.write(f"heavy {number} " + "h" * 1_000 + "\\n")
    if number % 50 == 0:
        time.sleep(0.005)
sys.stdin.read()
"""
WRITE_NOW_AND_THEN = """
import sys, time
from {{ cookiecutter.package_name }}.log_writer import LogWriter
writer = LogWriter(sys.stdout, on_dropped=lambda count: None)
for number in range(40):
    writer.write(f"light {number}\\n")
    time.sleep(0.1)
sys.stdin.read()
"""
FAIR_READER_BYTES_PER_SECOND = 500_000
FAIR_READ_SECONDS = 8.0
PIPE_CAPACITY = 65_536  # Linux's default


def test_a_worker_writing_heavily_behind_a_slow_reader_starves_no_other() -> None:
    """One worker's queue stays full (thousands of lines, minutes of reading): the
    other's lines, a few a second, must still get through within seconds, not wait
    for the whole of the first one's queue."""
    read_end, write_end = os.pipe()
    writers = [
        subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=write_end)  # noqa: S603
        for code in (WRITE_HEAVILY, WRITE_NOW_AND_THEN)
    ]
    os.close(write_end)
    received = bytearray()
    deadline = time.monotonic() + FAIR_READ_SECONDS
    try:
        while time.monotonic() < deadline:
            if select.select([read_end], [], [], 0.1)[0]:
                chunk = os.read(read_end, 4_096)
                received.extend(chunk)
                time.sleep(len(chunk) / FAIR_READER_BYTES_PER_SECOND)
    finally:
        for writer in writers:
            writer.kill()
            writer.communicate()
        os.close(read_end)
    light = re.findall(rb"^light \d+$", bytes(received), re.MULTILINE)
    # 40 written over 4 s, and 4 s more to read them: all but the last few arrive.
    assert len(light) >= 30, f"{len(light)} of the light worker's 40 lines arrived"


def test_the_count_of_lines_dropped_is_not_dropped_itself() -> None:
    """on_dropped logs the count through the writer, when its queue is (nearly) full
    of the lines that came while the stream was stuck: that line must get through."""
    stream = StuckStream()

    def report(count: int) -> None:  # as telemetry.py's: a line through the writer
        writer.write(f"dropped {count}\n")

    writer = LogWriter(stream, on_dropped=report, max_queued_lines=100)
    writer.write("first\n")
    assert stream.entered.wait(WAIT_SECONDS), "the writer thread never wrote"
    for number in range(150):
        writer.write(f"later {number}\n")
    stream.released.set()
    writer.close()
    assert stream.getvalue().splitlines()[-1] == "dropped 50"


def test_a_reader_that_stopped_never_hangs_the_exit() -> None:
    """SIGTERM while the log collector is stuck: the pipe is full, and close() must
    give up on its last lines within its bounds rather than wait for room for ever."""
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(write_end, "w") as stream:
            writer = LogWriter(stream, on_dropped=lambda count: None)
            for number in range(2_000):  # far more than the pipe holds
                writer.write(f"line {number} {'x' * 100}\n")
            held = array.array("i", [0])
            until_full = time.monotonic() + WAIT_SECONDS
            while held[0] < PIPE_CAPACITY - select.PIPE_BUF and time.monotonic() < until_full:
                time.sleep(0.01)
                fcntl.ioctl(read_end, termios.FIONREAD, held)
            # The thread is stuck in its batch; close() has this one to write, into
            # a pipe with no room for it.
            writer.write("y" * 10_000 + "\n")
            closing = threading.Thread(target=writer.close, daemon=True)
            closing.start()
            closing.join(CLOSE_TIMEOUT_SECONDS + LOCK_WAIT_SECONDS + WAIT_SECONDS)
            assert not closing.is_alive(), "close() waits for a reader that stopped"
            started = time.monotonic()
            writer.write("z" * 10_000 + "\n")
            assert time.monotonic() - started < LOCK_WAIT_SECONDS + 1.0
    finally:
        os.close(read_end)


HOLD_LOCK = """
import fcntl, sys, time
fcntl.lockf(1, fcntl.LOCK_EX)
sys.stderr.write("locked\\n")
sys.stderr.flush()
time.sleep(30)
"""


def test_a_lock_held_elsewhere_delays_the_lines_but_never_the_exit() -> None:
    """Another process holding the record lock on our stdout (stuck, or not one of
    ours) holds our lines back until it lets go, but never the process's exit."""
    read_end, write_end = os.pipe()
    holder = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", HOLD_LOCK], stdout=write_end, stderr=subprocess.PIPE
    )
    try:
        assert holder.stderr is not None
        assert holder.stderr.readline() == b"locked\n"
        with os.fdopen(write_end, "w") as stream:
            writer = LogWriter(stream, on_dropped=lambda count: None)
            writer.write("written once the lock is free\n")
            closing = threading.Thread(target=writer.close, daemon=True)
            closing.start()
            closing.join(WAIT_SECONDS * 2)
            assert not closing.is_alive(), "close() waited for the other process's lock"
            assert not select.select([read_end], [], [], 0)[0], "written while locked"
            holder.kill()  # lets go of the lock
            readable, _, _ = select.select([read_end], [], [], WAIT_SECONDS * 2)
            assert readable, "the line never arrived"
            assert os.read(read_end, 4_096) == b"written once the lock is free\n"
    finally:
        holder.kill()
        holder.communicate()
        os.close(read_end)


def test_after_close_a_line_is_written_at_once() -> None:
    """Shutdown lines (uvicorn's last ones) come after the app has closed the writer."""
    stream = io.StringIO()
    writer = LogWriter(stream, on_dropped=lambda count: None)
    writer.write("before\n")
    writer.close()
    writer.write("after\n")
    assert stream.getvalue() == "before\nafter\n"


def test_a_closed_writer_is_not_kept_alive() -> None:
    """Until closed, atexit holds the writer (to write its last lines at exit); after,
    nothing does, so an app replaced by another (tests, reloads) leaves no writer behind."""
    writer = LogWriter(io.StringIO(), on_dropped=lambda count: None)
    collected = weakref.ref(writer)
    writer.close()
    del writer
    gc.collect()
    assert collected() is None


def test_a_stuck_stream_blocks_no_caller_and_the_lines_dropped_are_counted() -> None:
    stream = StuckStream()
    dropped: list[int] = []
    writer = LogWriter(stream, on_dropped=dropped.append, max_queued_lines=100)
    writer.write("first\n")
    assert stream.entered.wait(WAIT_SECONDS), "the writer thread never wrote"
    later = [f"later {number}\n" for number in range(150)]
    caller = threading.Thread(target=lambda: [writer.write(line) for line in later])
    caller.start()
    caller.join(WAIT_SECONDS)
    stuck = caller.is_alive()
    stream.released.set()
    writer.close()
    assert not stuck, "write() waited for the stuck stream"
    assert stream.getvalue() == "first\n" + "".join(later[:100])
    assert dropped == [50]
