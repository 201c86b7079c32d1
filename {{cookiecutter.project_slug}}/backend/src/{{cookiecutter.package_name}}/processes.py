"""Whether a process still runs: for the files a process leaves behind it."""

from __future__ import annotations

import os


def running(pid: int) -> bool:
    """A process with this id exists (one that died but is not yet reaped still does,
    for the moment its parent takes to notice)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True
