"""A trigger that fires every fixed amount of elapsed time."""

from __future__ import annotations

import functools
import math
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import timezone as fixed_zone
from typing import Any
from zoneinfo import ZoneInfo

from tickwork.exceptions import InvalidTriggerError
from tickwork.triggers.base import BaseTrigger, synonym
from tickwork.utils import ClassSignature, is_fixed_offset, same_instant

__all__ = ["MAX_INTERVAL", "IntervalTrigger"]

_UTC = UTC
_ZERO = timedelta(0)
_UNIT_NAMES = ("weeks", "days", "hours", "minutes", "seconds")
#: The longest interval: fire times must stay within datetime's range (to 9999-12-31),
#: and a longer one could not fire even eight times from today before getting there.
MAX_INTERVAL = timedelta(days=365_250)  # 1000 years
#: The latest instant a fire time may be computed at: a day before datetime.max, so it
#: can still be expressed in any zone (UTC offsets are below 24 hours).
_LATEST = datetime.max.replace(tzinfo=_UTC) - timedelta(days=1)
#: ``_last`` before the first answer: (previous time asked about, the answer).
_NOTHING_YET: tuple[datetime | None, datetime | None] = (None, None)


@functools.lru_cache(maxsize=512)
def _interval(weeks: float, days: float, hours: float, minutes: float, seconds: float) -> timedelta:
    """The timedelta of these units, shared: timedeltas are immutable, and a million tasks
    every 5 minutes need only one (40 bytes each otherwise)."""
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


def _bad_length(units: tuple[float, ...], interval: timedelta | None) -> str:
    """Why these units make no interval (``interval``: their sum, None when it has none),
    naming the units given."""
    if not all(map(math.isfinite, units)):
        expected = "a finite length"
    elif interval is not None and interval <= _ZERO:
        expected = "positive"
    else:
        expected = f"at most {MAX_INTERVAL.days} days (1000 years)"
    given = ", ".join(f"{k}={v!r}" for k, v in zip(_UNIT_NAMES, units, strict=True) if v)
    return f"the interval must be {expected}, got {given or 'seconds=0'}"


class IntervalTrigger(BaseTrigger):
    """Fire every ``weeks + days + hours + minutes + seconds`` of elapsed time.

    The interval is *elapsed* time, not wall-clock time: a one-hour interval fires 3600 s
    apart across a DST change, even when the local clock shows the same hour twice.

    Fire times lie on a fixed grid, so runs never drift, even with jitter or a late
    scheduler:

    * with ``start_at``, the grid is ``start_at + k * interval``; a ``start_at`` in the
      past fires first at the next grid point that is not in the past;
    * without it, the first run comes one interval after the task is scheduled (or
      resumed), and each next run one interval after the previous fire time: the task's
      ``next_run_time`` carries the grid, and the trigger holds no state of its own, so
      any number of tasks can share one instance;
    * with ``jitter`` but no ``start_at``, the trigger anchors its grid the first time it
      is asked (jittered fire times are no grid to count from), so it belongs to one task.

    ``end_at`` is the last instant a run may be scheduled at; jitter never delays a run
    past it. Values may be fractional (``seconds=0.5``). ``start_date`` and ``end_date``
    (APScheduler 3's names) are accepted for ``start_at`` and ``end_at``.

    Refused with :class:`~tickwork.exceptions.InvalidTriggerError`, naming the value:
    lengths that are not finite numbers, a total that is not positive or longer than
    :data:`MAX_INTERVAL` (1000 years), a ``start_at`` too close to the year 9999 for a
    second fire time, and ``jitter`` that is negative, not finite, or not shorter than
    the interval (a run jittered by a whole interval would take the next run's place).
    A pytz zone (``timezone=``, or the zone of ``start_at``/``end_at``) is converted to
    its zoneinfo equivalent.
    """

    __slots__ = ("_fixed_zone", "_last", "end_at", "interval", "jitter", "start_at", "timezone")
    alias = "interval"
    __signature__ = ClassSignature()  # add_task asks for it on every call

    def __init__(
        self,
        weeks: float = 0,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        start_at: datetime | date | str | None = None,
        end_at: datetime | date | str | None = None,
        timezone: str | tzinfo | None = None,
        jitter: float | timedelta | None = None,
        *,
        start_date: datetime | date | str | None = None,
        end_date: datetime | date | str | None = None,
    ) -> None:
        units = (weeks, days, hours, minutes, seconds)
        for name, value in zip(_UNIT_NAMES, units, strict=True):
            # Exact types first: this runs on every add_task with an interval.
            if (
                type(value) is not int
                and type(value) is not float
                and (isinstance(value, bool) or not isinstance(value, int | float))
            ):
                raise InvalidTriggerError(f"interval {name} must be a number, got {value!r}")
        try:
            self.interval = interval = _interval(*units)
        except (ValueError, OverflowError):  # NaN, infinite, or beyond timedelta's range
            interval = None
        if interval is None or not _ZERO < interval <= MAX_INTERVAL:
            raise InvalidTriggerError(_bad_length(units, interval))
        self.timezone = zone = (
            timezone
            if type(timezone) is ZoneInfo or type(timezone) is fixed_zone
            else self._resolve_timezone(timezone)
        )
        if start_date is not None:
            start_at = synonym(start_at, "start_at", start_date, "start_date")
        if end_date is not None:
            end_at = synonym(end_at, "end_at", end_date, "end_date")
        self.start_at = None if start_at is None else self._start(start_at, zone)
        self.end_at = None if end_at is None else self._resolve_datetime(end_at, zone, "end_at")
        if end_at is not None:
            self._check_bounds(self.start_at, self.end_at)
        self.jitter = None if jitter is None else self._interval_jitter(jitter)
        self._fixed_zone = is_fixed_offset(zone)
        self._last = _NOTHING_YET

    def _start(self, start_at: datetime | date | str, zone: tzinfo) -> datetime | None:
        start = self._resolve_datetime(start_at, zone, "start_at")
        # One comparison, here, rather than a check on every fire time: the grid can then
        # be computed until it reaches the year 9999, and the trigger ends there.
        if start is not None and start > _LATEST - self.interval:
            raise InvalidTriggerError(
                f"start_at={start.isoformat()} leaves no room for a second fire time "
                f"{self.interval} later before the year 9999 ends"
            )
        return start

    def _interval_jitter(self, jitter: float | timedelta) -> timedelta | None:
        value = self._resolve_jitter(jitter)
        if value is not None and value >= self.interval:
            # A run delayed by a whole interval would land on the next grid point, which
            # the next fire time is counted from: that run would be skipped.
            raise InvalidTriggerError(
                f"jitter must be shorter than the interval ({self.interval}), got {jitter!r}"
            )
        return value

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        """Return the next grid point after ``previous_time`` (or the first one)."""
        if previous_time is None:
            if self.start_at is None and self.jitter is None:
                return self._next_from(now)  # (every add_task(fn, "interval", ...) asks)
            return self._next(None, now)
        if self.jitter is not None:
            return self._next(previous_time, now)
        # Tasks sharing this trigger and due at the same instant (a burst, a thousand tasks
        # on one grid) ask about the same time: answered once, and they share the answer
        # (one datetime, not one each), so next time they ask about the very same object.
        last = self._last
        if same_instant(last[0], previous_time):
            return last[1]
        fire_time = self._next(previous_time, now)
        self._last = (previous_time, fire_time)
        return fire_time

    def _next(self, previous_time: datetime | None, now: datetime | None) -> datetime | None:
        try:
            return self._next_on_grid(previous_time, now)
        except OverflowError:  # the grid reached the year 9999: no more fire times
            return None

    def _next_on_grid(
        self, previous_time: datetime | None, now: datetime | None
    ) -> datetime | None:
        start_at = self.start_at
        if start_at is None and self.jitter is None:
            return self._next_from(now if previous_time is None else previous_time)
        if (
            previous_time is not None
            and start_at is not None
            and not self.jitter
            and is_fixed_offset(start_at.tzinfo)
        ):
            # A zone without DST (UTC, most servers): wall-clock arithmetic is elapsed
            # time there, so the grid needs no round trip through UTC. ``previous_time``
            # in another zone is still subtracted correctly (by UTC offset).
            steps = (previous_time - start_at) // self.interval + 1
            fire_time = start_at + max(steps, 0) * self.interval
            if self.end_at is not None and fire_time > self.end_at:
                return None
            if start_at.tzinfo is self.timezone:
                return fire_time
            return fire_time.astimezone(self.timezone)
        if self.start_at is None:  # (jitter without start_at: anchor the grid here, once)
            if now is None:
                raise InvalidTriggerError("an interval trigger without start_at needs 'now'")
            # In UTC: "now" in a local zone would make this wall-clock arithmetic.
            start = now.astimezone(_UTC) + self.interval
            self.start_at = start.astimezone(self.timezone)
        else:
            # Grid arithmetic in UTC: Python adds and subtracts aware datetimes that share
            # a tzinfo as *wall* times, which would turn a 1-hour interval into 2 hours
            # (or 0) on the night the clocks change.
            start = self.start_at.astimezone(_UTC)
        if previous_time is None:
            if now is None or now <= start:
                fire_time = start
            else:
                # Ceil division: the first grid point at or after now.
                steps = -((start - now.astimezone(_UTC)) // self.interval)
                fire_time = start + steps * self.interval
        else:
            # Floor division, then one more: robust to a jittered previous_time.
            steps = (previous_time.astimezone(_UTC) - start) // self.interval + 1
            fire_time = start + max(steps, 0) * self.interval
        end = None if self.end_at is None else self.end_at.astimezone(_UTC)
        if end is not None and fire_time > end:
            return None
        return self._apply_jitter(fire_time, self.jitter, end).astimezone(self.timezone)

    def _next_from(self, base: datetime | None) -> datetime | None:
        """One interval after ``base`` (the previous fire time, or now): the grid of a
        trigger without ``start_at`` or jitter, which the task's run times carry."""
        if base is None:
            raise InvalidTriggerError("an interval trigger without start_at needs 'now'")
        zone = self.timezone
        # (A try costs nothing until it catches; a range check would cost on every call.)
        try:
            if base.tzinfo is zone and self._fixed_zone:
                fire_time = base + self.interval  # wall-clock arithmetic is elapsed time here
            else:
                # In UTC: adding to a time in a DST zone would be wall-clock arithmetic.
                fire_time = (base.astimezone(_UTC) + self.interval).astimezone(zone)
        except OverflowError:  # past the year 9999: the trigger is done
            return None
        end_at = self.end_at
        if end_at is not None and fire_time.astimezone(_UTC) > end_at.astimezone(_UTC):
            return None
        return fire_time

    def latest_fire_time(self, timezone: tzinfo, due: datetime, now: datetime) -> datetime | None:
        """The last grid point in ``[due, now]`` (and within ``end_at``), computed in one
        step; see :meth:`~tickwork.triggers.base.BaseTrigger.latest_fire_time`.

        The grid is ``start_at + k * interval``, or ``due + k * interval`` without
        ``start_at`` (each fire time is then one interval after the previous one, from
        ``due``). It is counted in elapsed time (UTC), as :meth:`get_next_trigger_time`
        counts it, so a DST change in between moves nothing. ``None`` with jitter:
        walking draws a new random delay for every fire time, and no grid point is what
        it would give."""
        if self.jitter is not None:
            return None
        # In UTC throughout: two datetimes of one DST zone subtract as wall times.
        bound = now.astimezone(_UTC)
        end_at = self.end_at
        if end_at is not None and end_at.astimezone(_UTC) < bound:
            bound = end_at.astimezone(_UTC)  # the walk ends at end_at
        anchor = (due if self.start_at is None else self.start_at).astimezone(_UTC)
        # Timedelta arithmetic is exact (whole microseconds), so ``anchor + k * interval``
        # is the very instant k additions of the interval reach.
        steps = (bound - anchor) // self.interval
        latest = anchor + steps * self.interval
        if steps < 0 or latest <= due.astimezone(_UTC):
            return due  # no grid point after due is due (or within end_at) yet
        try:
            return latest.astimezone(self.timezone)
        except OverflowError:  # (a zone ahead of UTC, days before the year 9999 ends)
            return None

    @property
    def shareable(self) -> bool:
        """True unless the trigger anchors itself on first use (jitter without
        ``start_at``)."""
        return self.start_at is not None or self.jitter is None

    def anchored(self, now: datetime) -> IntervalTrigger:
        """A copy whose grid starts one interval after ``now``, when this trigger has no
        ``start_at``; otherwise this trigger."""
        if self.start_at is not None:
            return self
        copy = IntervalTrigger.__new__(IntervalTrigger)
        copy.__setstate__(self.__getstate__())
        copy.start_at = (now.astimezone(_UTC) + self.interval).astimezone(self.timezone)
        return copy

    def __getstate__(self) -> dict[str, Any]:
        """The trigger's state (see :class:`~tickwork.triggers.base.BaseTrigger`)."""
        return {
            "version": 1,
            "interval": self.interval,
            "start_at": self.start_at,
            "end_at": self.end_at,
            "timezone": self.timezone,
            "jitter": self.jitter,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._check_state_version(state)
        self.interval = state["interval"]
        self.start_at = state["start_at"]
        self.end_at = state["end_at"]
        self.timezone = state["timezone"]
        self.jitter = state["jitter"]
        self._fixed_zone = is_fixed_offset(self.timezone)
        self._last = _NOTHING_YET

    def __repr__(self) -> str:
        parts = [f"interval={self.interval}"]
        if self.start_at is not None:
            parts.append(f"start_at={self.start_at.isoformat()}")
        if self.end_at is not None:
            parts.append(f"end_at={self.end_at.isoformat()}")
        if self.jitter:
            parts.append(f"jitter={self.jitter.total_seconds()}s")
        return f"IntervalTrigger({', '.join(parts)})"
