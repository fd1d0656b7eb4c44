"""A trigger that fires every N years, months, weeks or days at one wall-clock time.

APScheduler 3's ``calendarinterval``, with its rules decided and written down here
(``docs/triggers.md`` has a runnable example of each):

* **With ``start_at``, counted from the anchor, never from the previous run.** The
  k-th fire date is ``start_at``'s date plus ``k * (years, months)``, then plus
  ``k * (weeks, days)``. The schedule never drifts: anchored on 31 January, it fires on
  31 March even though February had no 31st.
* **Without it, counted from the previous fire date**, as an ``interval`` without
  ``start_at`` is: the first run is on the grid anchored on the day the task is
  scheduled, and the task's run times carry the grid, so the trigger holds no state, any
  number of tasks share it, and a program that adds its tasks at every start finds the
  same trigger (its schedule goes on). A day that clamped stays clamped (31 January, 28
  February, 28 March): give ``start_at`` to keep the 31st. (With jitter the trigger
  anchors itself on first use instead, as an ``interval`` does.)
* **Month ends clamp.** A day that the target month lacks becomes that month's last day:
  31 January + 1 month is 28 February (29 in a leap year), and 29 February + 1 year is
  28 February. APScheduler 3 *skips* such months instead (no February run at all); a
  monthly report that silently misses February is the surprise tickwork avoids. For
  "the last day of every month", use ``CronTrigger(day="last")``.
* **Same wall-clock time, through DST**, by the rules every tickwork trigger follows: a
  time the clocks spring forward over fires at the end of the gap (APScheduler 3 skips
  that day), a time that occurs twice fires at its first pass.

The next fire time is computed, not searched for: an estimate of k from the elapsed
days, corrected by a step or two.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from tickwork.exceptions import InvalidTriggerError
from tickwork.triggers._wall_time import first_instant, wall
from tickwork.triggers.base import BaseTrigger, synonym

__all__ = ["CalendarIntervalTrigger"]

_TICK = timedelta(microseconds=1)
#: The mean Gregorian month (146,097 days / 4,800 months): only for estimating k.
_MEAN_MONTH_DAYS = 30.436875
#: The longest period, as for IntervalTrigger: 1000 years.
_MAX_MONTHS = 12_000
_MAX_DAYS = 365_250
_UNITS = ("years", "months", "weeks", "days")
_CLOCK = (("hour", 23), ("minute", 59), ("second", 59))


def _whole_number(name: str, value: object, highest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= highest:
        raise InvalidTriggerError(
            f"{name} must be a whole number from 0 to {highest}, got {value!r}"
        )
    return value


def _add_months(anchor: date, months: int) -> date:
    """``anchor`` moved by ``months``, its day clamped to the target month's last day
    (``ValueError`` past the year 9999)."""
    year, month = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    last = calendar.monthrange(year, month + 1)[1] if 1 <= year <= 9999 else 31
    return date(year, month + 1, min(anchor.day, last))


def _is_whole_day(value: object) -> bool:
    """A date, or an ISO date without a time: an ``end_at`` meaning that whole day."""
    if isinstance(value, str):
        return len(value) == 10
    return isinstance(value, date) and not isinstance(value, datetime)


class CalendarIntervalTrigger(BaseTrigger):
    """Fire every ``years`` / ``months`` / ``weeks`` / ``days`` at ``hour:minute:second``
    on the wall clock of ``timezone``.

    The units add up (``months=1, days=1``); each is a whole number, at least one must
    be positive, and the period is at most 1000 years. With ``start_at`` the k-th fire
    date is ``start_at``'s date (in ``timezone``) plus ``k`` times the years and months
    (a day the month lacks clamps to its last day), then plus ``k`` times the weeks and
    days. Without it, the first fire date is the day the task is scheduled (or the next
    period, once that day's time has passed) and each next one the previous fire date
    plus the period. The rules, and how they differ from APScheduler 3's, are in the
    module docstring and ``docs/triggers.md``.

    ``start_at`` is the earliest instant a run may be scheduled at: a grid date whose
    time of day is earlier is passed over. ``end_at`` is the latest; given as a date (or
    an ISO date such as ``"2026-12-31"``) it means the end of that day, so a run on that
    date still happens. ``start_date`` and ``end_date`` (APScheduler 3's names) are
    accepted for them. ``jitter`` delays each run by up to that many seconds; it must be
    shorter than half the shortest period (14 days for ``months=1``, 12 hours for
    ``days=1``), so a delayed run never reaches the next fire time.

    Refused with :class:`~tickwork.exceptions.InvalidTriggerError`, naming the value: an
    interval of 0 (nothing would ever advance), negative or fractional units, a time of
    day out of range, ``start_at`` after ``end_at``, and a jitter too long.
    """

    __slots__ = (
        "_time",
        "days",
        "end_at",
        "hour",
        "jitter",
        "minute",
        "months",
        "second",
        "start_at",
        "timezone",
        "weeks",
        "years",
    )
    alias = "calendarinterval"

    start_at: datetime | None
    end_at: datetime | None
    jitter: timedelta | None

    def __init__(
        self,
        years: int = 0,
        months: int = 0,
        weeks: int = 0,
        days: int = 0,
        hour: int = 0,
        minute: int = 0,
        second: int = 0,
        start_at: datetime | date | str | None = None,
        end_at: datetime | date | str | None = None,
        timezone: str | tzinfo | None = None,
        jitter: float | timedelta | None = None,
        *,
        start_date: datetime | date | str | None = None,
        end_date: datetime | date | str | None = None,
    ) -> None:
        self.years = _whole_number("years", years, _MAX_MONTHS // 12)
        self.months = _whole_number("months", months, _MAX_MONTHS)
        self.weeks = _whole_number("weeks", weeks, _MAX_DAYS // 7)
        self.days = _whole_number("days", days, _MAX_DAYS)
        self._check_period()
        self.hour = _whole_number("hour", hour, 23)
        self.minute = _whole_number("minute", minute, 59)
        self.second = _whole_number("second", second, 59)
        self._time = time(self.hour, self.minute, self.second)
        if start_date is not None:
            start_at = synonym(start_at, "start_at", start_date, "start_date")
        if end_date is not None:
            end_at = synonym(end_at, "end_at", end_date, "end_date")
        self.timezone = zone = self._resolve_timezone(timezone)
        self.start_at = self._resolve_datetime(start_at, zone, "start_at")
        self.end_at = self._end(end_at, zone)
        self._check_bounds(self.start_at, self.end_at)
        self.jitter = self._resolve_jitter(jitter)
        if self.jitter is not None and self.jitter * 2 >= self._shortest_period():
            raise InvalidTriggerError(
                f"jitter must be shorter than half the shortest time between two fire "
                f"times ({self._shortest_period() / 2} for {self._period_text()}), "
                f"got {jitter!r}"
            )

    def _check_period(self) -> None:
        if self._months_step() == 0 and self._days_step() == 0:
            raise InvalidTriggerError(
                "a calendar interval must be at least one day long: got years=0, months=0, "
                "weeks=0, days=0 (every run would be at the same instant); for a period "
                "shorter than a day use the 'interval' trigger"
            )
        if self._months_step() > _MAX_MONTHS or self._days_step() > _MAX_DAYS:
            raise InvalidTriggerError(
                f"a calendar interval must be at most 1000 years, got {self._period_text()}"
            )

    def _end(self, end_at: datetime | date | str | None, zone: tzinfo) -> datetime | None:
        resolved = self._resolve_datetime(end_at, zone, "end_at")
        if resolved is None or not _is_whole_day(end_at):
            return resolved
        # A date bound is the whole day, as APScheduler 3's end_date: up to the instant
        # before the next day's midnight (its first instant, should a DST gap take it).
        next_midnight = datetime.combine(resolved.date() + timedelta(days=1), time())
        return (first_instant(zone, next_midnight) - _TICK).astimezone(zone)

    def _months_step(self) -> int:
        return self.years * 12 + self.months

    def _days_step(self) -> int:
        return self.weeks * 7 + self.days

    def _shortest_period(self) -> timedelta:
        # A month is at least 28 days: the shortest stretch k months can span.
        return timedelta(days=28 * self._months_step() + self._days_step())

    def _period_text(self) -> str:
        return ", ".join(f"{unit}={getattr(self, unit)}" for unit in _UNITS if getattr(self, unit))

    @property
    def shareable(self) -> bool:
        """True unless the trigger anchors itself on first use (jitter without
        ``start_at``)."""
        return self.start_at is not None or self.jitter is None

    def anchored(self, now: datetime) -> CalendarIntervalTrigger:
        """A copy whose grid is anchored at ``now``, when this trigger has no
        ``start_at``; otherwise this trigger."""
        if self.start_at is not None:
            return self
        copy = CalendarIntervalTrigger.__new__(CalendarIntervalTrigger)
        copy.__setstate__(self.__getstate__())
        copy.start_at = now.astimezone(self.timezone)
        return copy

    # -- the grid ---------------------------------------------------------------------------

    def _fire_time(self, anchor: date, k: int) -> datetime:
        """The k-th grid point from ``anchor``, as a UTC instant (``ValueError`` or
        ``OverflowError`` past the year 9999)."""
        day = _add_months(anchor, k * self._months_step()) + timedelta(days=k * self._days_step())
        return first_instant(self.timezone, datetime.combine(day, self._time))

    def _first_at_or_after(self, anchor: date, earliest: datetime) -> tuple[int, datetime]:
        """The smallest k whose grid point is not before ``earliest`` (UTC), and that
        point. Grid points never go backwards as k grows, so an estimate from the mean
        period, corrected a step or two either way, is exact."""
        elapsed = (wall(self.timezone, earliest).date() - anchor).days
        mean = self._months_step() * _MEAN_MONTH_DAYS + self._days_step()
        k = max(0, int(elapsed / mean) - 1)
        while k > 0 and self._fire_time(anchor, k - 1) >= earliest:
            k -= 1
        fire_time = self._fire_time(anchor, k)
        while fire_time < earliest:
            k += 1
            fire_time = self._fire_time(anchor, k)
        return k, fire_time

    def _grid_date(self, moment: datetime) -> date:
        """The last date whose fire time is not after ``moment``: the date a fire time
        belongs to, also when a DST gap moved it (or it was set off the grid by hand)."""
        day = wall(self.timezone, moment).date()
        if first_instant(self.timezone, datetime.combine(day, self._time)) > moment:
            day -= timedelta(days=1)
        return day

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        """Return the first grid point strictly after ``previous_time`` (at or after
        ``now`` when there is none), never before ``start_at``; ``None`` past ``end_at``
        or the year 9999."""
        if self.start_at is None and previous_time is None and now is None:
            raise InvalidTriggerError("a calendarinterval trigger without start_at needs 'now'")
        try:
            if self.start_at is None and self.jitter is None:
                fire_time = self._next_from(previous_time, now)
            else:
                fire_time = self._next_on_grid(previous_time, now)
        except (OverflowError, ValueError):  # the grid reached the year 9999: it ends
            return None
        end = None if self.end_at is None else self.end_at.astimezone(UTC)
        if end is not None and fire_time > end:
            return None
        return self._apply_jitter(fire_time, self.jitter, end).astimezone(self.timezone)

    def _next_from(self, previous_time: datetime | None, now: datetime | None) -> datetime:
        """Without ``start_at``: the grid is the task's own, carried by its run times (so
        one trigger serves any number of tasks, and a restart finds it equal). The first
        run is on the grid anchored on the day of ``now``; each next one a period after
        the date of the previous one."""
        if previous_time is not None:
            return self._fire_time(self._grid_date(previous_time.astimezone(UTC)), 1)
        assert now is not None  # (checked by the caller)
        return self._first_at_or_after(wall(self.timezone, now).date(), now.astimezone(UTC))[1]

    def _next_on_grid(self, previous_time: datetime | None, now: datetime | None) -> datetime:
        """With ``start_at`` (or jitter, anchored on first use): the k-th grid point from
        the anchor, never drifting, whatever the jitter or a late scheduler did."""
        if self.start_at is None:  # (jitter without start_at: anchor the grid here, once)
            first = now if previous_time is None else previous_time
            assert first is not None  # (checked by the caller)
            self.start_at = first.astimezone(self.timezone)
        start = self.start_at.astimezone(UTC)
        if previous_time is not None:
            earliest = previous_time.astimezone(UTC) + _TICK
        else:
            earliest = start if now is None else now.astimezone(UTC)
        return self._first_at_or_after(self._anchor(), max(earliest, start))[1]

    def _anchor(self) -> date:
        assert self.start_at is not None  # (anchored before the grid is asked)
        return self.start_at.astimezone(self.timezone).date()

    def latest_fire_time(self, timezone: tzinfo, due: datetime, now: datetime) -> datetime | None:
        """The last fire time in ``[due, now]`` (and within ``end_at``), computed as the
        forward answer is; see :meth:`~tickwork.triggers.base.BaseTrigger.latest_fire_time`.

        ``None`` (walk) with jitter, which draws new delays on every walk, and without
        ``start_at`` where stepping from one fire date to the next is not k times one
        step: a day past the 28th that months may clamp, or months and days together."""
        if self.jitter is not None:
            return None
        due_utc = due.astimezone(UTC)
        bound = now.astimezone(UTC)
        if self.end_at is not None:
            bound = min(bound, self.end_at.astimezone(UTC))
        if bound <= due_utc:
            return due
        try:
            if self.start_at is None:
                anchor = self._grid_date(due_utc)
                if self._months_step() and (anchor.day > 28 or self._days_step()):
                    return None
            else:
                anchor = self._anchor()
            k, _ = self._first_at_or_after(anchor, bound + _TICK)
            latest = self._fire_time(anchor, k - 1) if k > 0 else due_utc
        except (OverflowError, ValueError):
            return None
        if latest <= due_utc or (self.start_at is not None and latest < self.start_at):
            return due
        return latest.astimezone(self.timezone)

    # -- state --------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """The trigger's state (see :class:`~tickwork.triggers.base.BaseTrigger`)."""
        return {
            "version": 1,
            "years": self.years,
            "months": self.months,
            "weeks": self.weeks,
            "days": self.days,
            "hour": self.hour,
            "minute": self.minute,
            "second": self.second,
            "start_at": self.start_at,
            "end_at": self.end_at,
            "timezone": self.timezone,
            "jitter": self.jitter,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._check_state_version(state)
        for name in (*_UNITS, "hour", "minute", "second", "start_at", "end_at", "timezone"):
            setattr(self, name, state[name])
        self.jitter = state["jitter"]
        self._time = time(self.hour, self.minute, self.second)

    def __repr__(self) -> str:
        parts = [self._period_text(), f"time='{self._time.isoformat()}'"]
        if self.start_at is not None:
            parts.append(f"start_at='{self.start_at.isoformat()}'")
        if self.end_at is not None:
            parts.append(f"end_at='{self.end_at.isoformat()}'")
        parts.append(f"timezone='{self.timezone}'")
        if self.jitter:
            parts.append(f"jitter={self.jitter.total_seconds()}")
        return f"CalendarIntervalTrigger({', '.join(parts)})"
