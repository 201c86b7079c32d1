"""The log lines' timestamps: the text structlog's TimeStamper(fmt="iso", utc=True)
writes, from a cheaper clock."""

from __future__ import annotations

import datetime

import pytest

from {{ cookiecutter.package_name }}.telemetry import UtcTimestamp

SECOND = 1_767_323_045  # 2026-01-02T03:04:05Z


def as_structlog_writes(nanoseconds: int) -> str:
    """What TimeStamper(fmt="iso", utc=True) writes at that instant (datetime.now()
    keeps whole microseconds)."""
    instant = datetime.datetime.fromtimestamp(nanoseconds // 1000 / 1e6, tz=datetime.UTC)
    return instant.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    "nanoseconds",
    [
        SECOND * 10**9,  # a whole second: isoformat writes no fraction
        SECOND * 10**9 + 999,  # still under a microsecond
        SECOND * 10**9 + 1_000,
        SECOND * 10**9 + 123_456_789,
        SECOND * 10**9 + 999_999_999,
        (SECOND + 86_399) * 10**9 + 500_000_000,  # the day's last second
    ],
)
def test_the_text_is_structlogs(nanoseconds: int) -> None:
    stamp = UtcTimestamp("time", clock=lambda: nanoseconds)
    assert stamp(None, "info", {})["time"] == as_structlog_writes(nanoseconds)


def test_a_new_second_is_formatted_again() -> None:
    instants = iter([SECOND * 10**9 + 5_000, (SECOND + 1) * 10**9 + 5_000])
    stamp = UtcTimestamp("time", clock=lambda: next(instants))
    first, second = (stamp(None, "info", {})["time"] for _ in range(2))
    assert (first, second) == ("2026-01-02T03:04:05.000005Z", "2026-01-02T03:04:06.000005Z")
