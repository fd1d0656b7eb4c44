"""The wall-clock search :class:`CronTrigger` is built on.

Nothing here knows about time zones. :class:`CronSpec` answers one question: "what is the
first *wall-clock* time at or after ``w`` whose fields all match?". The trigger turns wall
times into instants and applies the DST rules. The fields come from
:mod:`tickwork.triggers._cron_fields`.

The search is field by field: skip to the next allowed year, then month, then the first
matching day of that month (a bitmask per month), then the first matching time of day. The
Gregorian calendar repeats every 400 years, so the day masks are cached by
``(year % 400, month)`` and even a rare schedule (Feb 29 on a Monday) costs a few dozen
dictionary look-ups.
"""

from __future__ import annotations

import calendar
import functools
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from tickwork.exceptions import InvalidTriggerError

__all__ = ["CronSpec", "Field"]

# _WEEK_PATTERN[k]: bit d set for the days d of a month whose weekday is the 1st's + k.
_WEEK_PATTERN = tuple(sum(1 << d for d in range(1 + k, 32, 7)) for k in range(7))


@dataclass(frozen=True, slots=True)
class Field:
    """One parsed field: plain values, plus the day-only extras."""

    values: frozenset[int]
    #: ``(weekday, n)`` pairs: the n-th (1..5, or -1 for the last) weekday of the month.
    nth: frozenset[tuple[int, int]] = frozenset()
    #: ``last``: the last day of the month.
    last_day: bool = False
    #: True when the expression starts with ``*`` (crontab's "unrestricted" test).
    star: bool = False


@dataclass(slots=True)
class CronSpec:
    """A compiled cron expression: finds the next matching wall-clock time.

    Read-only once built, so triggers with the same expression share one (the day masks
    it caches are the same for all of them)."""

    years: Sequence[int]  # each sorted: a tuple, or a range
    months: Sequence[int]
    day: Field
    weekday: Field
    weeks: frozenset[int] | None  # None: every ISO week
    hours: Sequence[int]
    minutes: Sequence[int]
    seconds: Sequence[int]
    day_or: bool
    _masks: dict[tuple[int, int], int] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls, fields: Mapping[str, Field], *, day_or: bool, described: Mapping[str, str]
    ) -> CronSpec:
        """Compile parsed fields; raise if no date can ever match."""
        weeks = fields["week"].values
        spec = cls(
            years=_sorted(fields["year"].values),
            months=_sorted(fields["month"].values),
            day=fields["day"],
            weekday=fields["day_of_week"],
            weeks=None if len(weeks) == 53 else weeks,
            hours=_sorted(fields["hour"].values),
            minutes=_sorted(fields["minute"].values),
            seconds=_sorted(fields["second"].values),
            day_or=day_or,
        )
        if not spec._can_fire():
            shown = ", ".join(f"{k}={v!r}" for k, v in described.items() if v != "*")
            raise InvalidTriggerError(
                f"{shown}: this cron expression can never fire, no date matches"
            )
        return spec

    @property
    def every_hour(self) -> bool:
        """True when the hour field matches all 24 hours (the "wildcard hour" DST rule)."""
        return len(self.hours) == 24

    def next_wall(self, after: datetime) -> datetime | None:
        """Return the first matching naive wall time at or after ``after``, or ``None``."""
        if after.microsecond:
            after = after.replace(microsecond=0) + timedelta(seconds=1)
        day = after.date()
        clock = (after.hour, after.minute, after.second)
        while True:
            found = self._next_date(day)
            if found is None:
                return None
            if found != day:
                clock = (0, 0, 0)
            at = self._next_time(*clock)
            if at is not None:
                return datetime.combine(found, time(*at))
            if found == date.max:
                return None
            # Nothing left today; tomorrow's first matching time always exists.
            day, clock = found + timedelta(days=1), (0, 0, 0)

    def prev_wall(self, before: datetime) -> datetime | None:
        """Return the last matching naive wall time at or before ``before``, or ``None``.

        The mirror of :meth:`next_wall`, for the latest overdue fire time of a coalesced
        task: the same field-by-field search, backwards."""
        day = before.date()
        clock = (before.hour, before.minute, before.second)  # (microseconds: floored)
        while True:
            found = self._prev_date(day)
            if found is None:
                return None
            if found != day:
                clock = (23, 59, 59)
            at = self._prev_time(*clock)
            if at is not None:
                return datetime.combine(found, time(*at))
            if found == date.min:
                return None
            # Nothing earlier that day; the previous day's last matching time always exists.
            day, clock = found - timedelta(days=1), (23, 59, 59)

    def _next_time(self, hour: int, minute: int, second: int) -> tuple[int, int, int] | None:
        for h in self.hours[bisect_left(self.hours, hour) :]:
            from_minute = minute if h == hour else 0
            for m in self.minutes[bisect_left(self.minutes, from_minute) :]:
                from_second = second if (h, m) == (hour, minute) else 0
                i = bisect_left(self.seconds, from_second)
                if i < len(self.seconds):
                    return h, m, self.seconds[i]
        return None

    def _prev_time(self, hour: int, minute: int, second: int) -> tuple[int, int, int] | None:
        hours, minutes, seconds = self.hours, self.minutes, self.seconds
        for h in reversed(hours[: bisect_right(hours, hour)]):
            to_minute = minute if h == hour else 59
            for m in reversed(minutes[: bisect_right(minutes, to_minute)]):
                to_second = second if (h, m) == (hour, minute) else 59
                i = bisect_right(seconds, to_second)
                if i:
                    return h, m, seconds[i - 1]
        return None

    def _prev_date(self, end: date) -> date | None:
        years, months = self.years, self.months
        year, month, day = end.year, end.month, end.day
        for year_index in range(bisect_right(years, year) - 1, -1, -1):
            if years[year_index] != year:
                year, month, day = years[year_index], 12, 31
            for month_index in range(bisect_right(months, month) - 1, -1, -1):
                if months[month_index] != month:
                    month, day = months[month_index], 31
                # Bits 1..day: the days of this month up to ``day``.
                mask = self._month_mask(year, month) & ((2 << day) - 1)
                if mask:
                    return date(year, month, mask.bit_length() - 1)
                day = 0  # this month is used up
            month, day = 0, 0
        return None

    def _next_date(self, start: date) -> date | None:
        years, months = self.years, self.months
        year, month, day = start.year, start.month, start.day
        for year_index in range(bisect_left(years, year), len(years)):
            if years[year_index] != year:
                year, month, day = years[year_index], 1, 1
            for month_index in range(bisect_left(months, month), len(months)):
                if months[month_index] != month:
                    month, day = months[month_index], 1
                mask = self._month_mask(year, month) >> day
                if mask:
                    return date(year, month, day + (mask & -mask).bit_length() - 1)
                day = 32  # the rest of this month is used up
            month, day = 13, 32
        return None

    def _month_mask(self, year: int, month: int) -> int:
        """Bit d is set when day d of the month matches every date field."""
        key = (year % 400, month)  # the calendar repeats every 400 years
        mask = self._masks.get(key)
        if mask is None:
            mask = self._masks[key] = self._compute_mask(year, month)
        return mask

    def _compute_mask(self, year: int, month: int) -> int:
        first_weekday, length = calendar.monthrange(year, month)
        in_month = (1 << (length + 1)) - 2
        by_day = _dom_mask(self.day, first_weekday, length)
        by_weekday = _dow_mask(self.weekday, first_weekday, length)
        mask = (by_day | by_weekday) if self.day_or else (by_day & by_weekday)
        mask &= in_month
        if self.weeks is not None and mask:
            for day in range(1, length + 1):
                if mask >> day & 1 and date(year, month, day).isocalendar().week not in self.weeks:
                    mask &= ~(1 << day)
        return mask

    def _can_fire(self) -> bool:
        seen: set[int] = set()
        for year in self.years:
            if year % 400 in seen:
                continue
            seen.add(year % 400)
            if any(self._month_mask(year, month) for month in self.months):
                return True
            if len(seen) == 400:
                break
        return False


@functools.lru_cache(maxsize=1024)
def _sorted(values: frozenset[int]) -> Sequence[int]:
    """A field's values sorted: a tuple, or a ``range`` when they are one (a year field
    of ``*`` is 8,030 years: a range costs 48 bytes instead of 64 KB). Cached: parsed
    fields are shared, and sorting the years took most of building a spec."""
    ordered = sorted(values)
    if ordered and ordered[-1] - ordered[0] == len(ordered) - 1:
        return range(ordered[0], ordered[-1] + 1)
    return tuple(ordered)


def _nth_mask(spec: Field, first_weekday: int, length: int) -> int:
    """Days matched by "3rd fri" / "last fri" terms."""
    mask = 0
    for weekday, n in spec.nth:
        first = 1 + (weekday - first_weekday) % 7
        day = first + 7 * ((length - first) // 7) if n == -1 else first + 7 * (n - 1)
        if day <= length:
            mask |= 1 << day
    return mask


def _dom_mask(spec: Field, first_weekday: int, length: int) -> int:
    """Days of a month (bit d = day d) matched by the day field."""
    mask = _nth_mask(spec, first_weekday, length)
    for value in spec.values:
        mask |= 1 << value
    if spec.last_day:
        mask |= 1 << length
    return mask


def _dow_mask(spec: Field, first_weekday: int, length: int) -> int:
    """Days of a month (bit d = day d) matched by the day_of_week field."""
    mask = _nth_mask(spec, first_weekday, length)
    for weekday in spec.values:
        mask |= _WEEK_PATTERN[(weekday - first_weekday) % 7]
    return mask
