"""The cyclic garbage collector's pace for a process that serves requests.

Python starts a young-generation collection every 700 allocations of container objects
(net of those freed). A request allocates thousands, most of which reference counting
frees before any collection would look at them, so a larger threshold means fewer
collections for the same work (callgrind, scripts/bench_gate.py, against 700): at
10,000, 32,000 fewer instructions per transfer and 6,000 per read; at 100,000,
62,000 and 34,000. What it costs is memory: objects in reference cycles wait longer
for a collection, at most that many allocations' worth (tens of megabytes only if
every one were cyclic garbage; a request makes few cycles).
"""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 100_000


def pace_for_serving() -> None:
    """Raise the young generation's threshold; the older generations keep theirs."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)
