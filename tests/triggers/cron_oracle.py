"""A deliberately dumb reference for CronTrigger: walk real time, read the wall clock.

It steps through *real* instants (UTC, one minute or one second apart), turns each into
the zone's wall time and tests the fields. Slow and obviously right, which is the point.

The DST contract, as the oracle states it:

* schedules whose hour field matches all 24 hours fire at every instant whose wall clock
  matches (both passes of a repeated hour; wall times inside a gap never show up);
* other schedules fire at an instant whose wall clock matches unless that instant is the
  second pass of a repeated hour (``fold == 1``), and also at the first instant after a
  gap when any wall time the gap skipped matches.
"""

from __future__ import annotations

import calendar
import functools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

__all__ = ["OracleSpec", "oracle_fire_times", "transitions"]


@dataclass(frozen=True)
class OracleSpec:
    """A cron schedule as plain sets; weekdays are 0=Monday."""

    months: frozenset[int]
    days: frozenset[int]
    last_day: bool
    #: ``(weekday, n)`` in the day field: the n-th (or -1: last) such weekday of the month.
    day_nth: frozenset[tuple[int, int]]
    weekdays: frozenset[int]
    #: ``(weekday, n)`` in the day-of-week field (crontab's ``5#3``).
    weekday_nth: frozenset[tuple[int, int]]
    hours: frozenset[int]
    minutes: frozenset[int]
    seconds: frozenset[int]
    #: Crontab's rule: when both day fields are restricted, either one suffices.
    day_or: bool
    dom_star: bool
    dow_star: bool

    def matches(self, wall: datetime) -> bool:
        """True when the naive wall time ``wall`` matches every field."""
        if wall.month not in self.months or wall.hour not in self.hours:
            return False
        if wall.minute not in self.minutes or wall.second not in self.seconds:
            return False
        length = calendar.monthrange(wall.year, wall.month)[1]

        def nth(pairs: frozenset[tuple[int, int]]) -> bool:
            last = wall.day + 7 > length
            count = (wall.day - 1) // 7 + 1  # this is the count-th such weekday
            return any(
                wall.weekday() == wd and (last if n == -1 else count == n) for wd, n in pairs
            )

        by_day = wall.day in self.days or (self.last_day and wall.day == length)
        by_day = by_day or nth(self.day_nth)
        by_weekday = wall.weekday() in self.weekdays or nth(self.weekday_nth)
        if self.day_or and not self.dom_star and not self.dow_star:
            return by_day or by_weekday
        return by_day and by_weekday

    @property
    def every_hour(self) -> bool:
        """The wildcard-hour rule applies."""
        return len(self.hours) == 24

    @property
    def step(self) -> timedelta:
        """The oracle's resolution: minutes unless the seconds field needs seconds."""
        return timedelta(minutes=1) if self.seconds == {0} else timedelta(seconds=1)


def oracle_fire_times(
    spec: OracleSpec, zone: tzinfo, start: datetime, window: timedelta
) -> list[datetime]:
    """Every fire time in ``[start, start + window)``, as aware UTC datetimes."""
    step = spec.step
    step_s = int(step.total_seconds())
    # Align to the step (transitions of the zones used are whole minutes).
    begin = start.astimezone(UTC)
    instant = datetime.fromtimestamp(math.ceil(begin.timestamp() / step_s) * step_s, UTC)
    end = begin + window
    fired: list[datetime] = []
    previous_local = (instant - step).astimezone(zone)
    while instant < end:
        local = instant.astimezone(zone)
        wall = local.replace(tzinfo=None)
        if spec.every_hour:
            fires = spec.matches(wall)
        else:
            fires = spec.matches(wall) and local.fold == 0
            skipped_from = previous_local.replace(tzinfo=None) + step
            if not fires and wall > skipped_from:  # the clock jumped: a gap
                probe = skipped_from
                while probe < wall and not fires:
                    fires = spec.matches(probe)
                    probe += step
        if fires and instant >= begin:
            fired.append(instant)
        previous_local = local
        instant += step
    return fired


@functools.cache
def transitions(zone_name: str, year: int) -> tuple[datetime, ...]:
    """The instants (UTC) at which the zone's offset changes during ``year``."""
    zone = ZoneInfo(zone_name)
    found = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    while day.year == year:
        following = day + timedelta(days=1)
        if day.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            low, high = day, following
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if middle.astimezone(zone).utcoffset() == following.astimezone(zone).utcoffset():
                    high = middle
                else:
                    low = middle
            found.append(high)
        day = following
    return tuple(found)
