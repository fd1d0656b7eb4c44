"""Wall time ↔ real time, under the DST rules of ``docs/triggers.md``.

Instants are aware UTC datetimes, wall times naive ones. tzinfo has no API for its
transitions, so they are found from the offsets PEP 495's ``fold`` gives a wall time
(both offsets agree for an ordinary wall time) and by bisection. The cron and the
calendar-interval triggers share these.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, tzinfo

from tickwork.exceptions import InvalidTriggerError

__all__ = ["first_instant", "instant", "offset", "offsets", "transition", "wall"]


def wall(zone: tzinfo, moment: datetime) -> datetime:
    """The naive wall time of ``moment`` in ``zone``."""
    return moment.astimezone(zone).replace(tzinfo=None)


def offset(moment: datetime) -> timedelta:
    """The UTC offset of an aware datetime (refused for a zone that gives none)."""
    value = moment.utcoffset()
    if value is None:
        raise InvalidTriggerError(f"time zone {moment.tzinfo!r} gives no UTC offset")
    return value


def offsets(zone: tzinfo, wall_time: datetime) -> tuple[timedelta, timedelta]:
    """The offsets a wall time maps with before and after a transition (PEP 495 folds).

    Equal: the wall time is ordinary. ``before > after``: it occurs twice (clocks set
    back). ``before < after``: it does not exist (clocks sprang forward over it).
    """
    return offset(wall_time.replace(tzinfo=zone)), offset(wall_time.replace(tzinfo=zone, fold=1))


def instant(wall_time: datetime, utc_offset: timedelta) -> datetime:
    """The UTC instant of a wall time read with ``utc_offset``."""
    return (wall_time - utc_offset).replace(tzinfo=UTC)


def transition(zone: tzinfo, before: datetime, after: datetime) -> datetime:
    """Return the instant in ``(before, after]`` at which the zone's offset changes.

    tzinfo has no API for its transitions, so bisect on whole seconds (tz data has no
    finer transitions): about 15 offset look-ups for a one-hour change.
    """
    target = offset(after.astimezone(zone))
    low, high = math.floor(before.timestamp()), math.ceil(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if offset(datetime.fromtimestamp(middle, zone)) == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def first_instant(zone: tzinfo, wall_time: datetime) -> datetime:
    """The instant a wall time *pinned to a time of day* fires at (rules 1 and 2):
    its only instant when ordinary, its first pass when it occurs twice, and the end of
    the gap when the clocks sprang forward over it."""
    before, after = offsets(zone, wall_time)
    if before < after:
        return transition(zone, instant(wall_time, after), instant(wall_time, before))
    return instant(wall_time, before)
