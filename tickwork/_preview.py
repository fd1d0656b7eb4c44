"""Next run times as people read them: each with a note where the UTC offset changes
since the time before it (a daylight-saving switch between two runs). Shown by the
admin app and the ``tickwork preview`` / ``tickwork cron`` commands."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

__all__ = ["PreviewTime", "mark_offset_changes"]


class PreviewTime(NamedTuple):
    """One upcoming run time, and what changed in its zone's offset since the previous
    one (``None``: nothing)."""

    time: datetime
    change: str | None


def mark_offset_changes(times: list[datetime], before: datetime | None = None) -> list[PreviewTime]:
    """``times`` with a note on each whose UTC offset differs from the time before it
    (``before`` for the first, when given), e.g. ``"UTC offset +01:00 → +02:00
    (daylight saving time starts)"``."""
    marked: list[PreviewTime] = []
    previous = before
    for time in times:
        change = None
        if previous is not None:
            old, new = previous.utcoffset(), time.utcoffset()
            if old is not None and new is not None and old != new:
                change = _describe(previous, time, old, new)
        marked.append(PreviewTime(time, change))
        previous = time
    return marked


def _describe(previous: datetime, time: datetime, old: timedelta, new: timedelta) -> str:
    old_dst, new_dst = previous.dst(), time.dst()
    if old_dst is not None and new_dst is not None and old_dst != new_dst:
        why = "daylight saving time starts" if new_dst > old_dst else "daylight saving time ends"
    else:
        why = "the zone's rules change"
    return f"UTC offset {_offset(old)} → {_offset(new)} ({why})"


def _offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"
