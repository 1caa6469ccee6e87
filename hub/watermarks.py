"""How far back an incremental pass looks: the rule change detection and attribute compute share.

A pass takes the moment it starts as its watermark and next time reads what changed since then. A transaction
still open at that start wrote times older than the watermark and became visible after it, so the next pass must
look back further than the watermark. Looking back minutes on every pass is safe but, under a steady stream of
webhooks, rebuilds minutes of customers each time; so every pass looks back :data:`QUICK_OVERLAP` (webhook loads
and passes are that short), and a sweep, at most every :data:`SWEEP_EVERY`, looks back the caller's long overlap
before the last sweep (for long sync transactions).
"""

from __future__ import annotations

from datetime import datetime, timedelta

#: How far before the last pass's start every pass looks again.
QUICK_OVERLAP = timedelta(seconds=5)
#: How often a pass is a sweep (looks back the long overlap before the last sweep).
SWEEP_EVERY = timedelta(minutes=1)


def look_back(
    now: datetime, last: datetime | None, last_sweep: datetime | None, overlap: timedelta
) -> tuple[datetime | None, bool]:
    """``(since, sweep)``: what to read (None: everything, there was no pass yet) and whether this pass is a sweep,
    whose start then becomes the last sweep's."""
    sweep = last is None or last_sweep is None or now - last_sweep >= SWEEP_EVERY
    if last is None:
        return None, True
    if sweep:
        return (last_sweep or last) - overlap, True
    return last - QUICK_OVERLAP, False
