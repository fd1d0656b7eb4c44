"""Where a scheduler gets the time from.

Every scheduler asks its clock, never ``datetime.now()`` directly, so tests can drive
time by hand with :class:`FakeClock` instead of sleeping: advancing a fake clock wakes
every scheduler that uses it, which then runs whatever became due.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from tickwork.utils import from_pytz_datetime

__all__ = ["Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of the current time."""

    def now(self) -> datetime:
        """Return the current time as a timezone-aware datetime."""
        ...


class SystemClock:
    """The real wall clock, in UTC."""

    __slots__ = ()

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A clock that only moves when told to; for tests.

    Schedulers using it subscribe to it and are woken whenever it moves, so a test
    writes ``clock.advance(seconds=30)`` and then checks what ran.
    """

    def __init__(self, start: datetime | None = None) -> None:
        if start is None:
            start = datetime(2026, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError(f"FakeClock needs a timezone-aware start time, got {start!r}")
        self._now = from_pytz_datetime(start)
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[], None]] = []

    def now(self) -> datetime:
        """Return the clock's current time."""
        return self._now

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (with no arguments) every time the clock moves."""
        with self._lock:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        """Stop calling ``callback``; unknown callbacks are ignored."""
        with self._lock:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (which may be earlier, to simulate a clock step back)."""
        if when.tzinfo is None:
            raise ValueError(f"FakeClock needs a timezone-aware time, got {when!r}")
        # (A time in a pytz zone would make every "now + interval" wall-clock arithmetic
        # in the zone's first historical offset.)
        self._now = from_pytz_datetime(when)
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback()

    def advance(
        self,
        delta: timedelta | float | None = None,
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        days: float = 0,
        weeks: float = 0,
    ) -> datetime:
        """Move forward and return the new time: by ``delta`` (a timedelta, or a number of
        seconds) plus the keywords, which add up as in ``timedelta``:
        ``advance(timedelta(hours=1))``, ``advance(90)``, ``advance(days=1, hours=2)``.

        Raises :class:`ValueError` for a step that goes backwards (use :meth:`set`) or
        that is not a finite number, and :class:`TypeError` for values that are not
        numbers, naming the value.
        """
        numbers: dict[str, Any] = {}
        if delta is not None and not isinstance(delta, timedelta):
            numbers["delta"] = delta  # seconds
        numbers.update(seconds=seconds, minutes=minutes, hours=hours, days=days, weeks=weeks)
        for name, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(
                    f"FakeClock.advance takes a timedelta or numbers, got {name}={value!r}"
                )
        try:
            step = timedelta(
                seconds=seconds + numbers.get("delta", 0),
                minutes=minutes,
                hours=hours,
                days=days,
                weeks=weeks,
            )
            if isinstance(delta, timedelta):
                step += delta
        except (ValueError, OverflowError):  # NaN, infinite, or beyond timedelta's range
            given = ", ".join(f"{k}={v!r}" for k, v in numbers.items() if v)
            raise ValueError(f"FakeClock.advance needs a finite step, got {given}") from None
        if step < timedelta(0):
            raise ValueError(f"FakeClock.advance cannot go backwards ({step!r}); use set()")
        # Elapsed time, added in UTC: adding to a time in a DST zone is wall-clock
        # arithmetic, which makes the day of a clock change 23 or 25 hours long.
        now = self._now
        self.set((now.astimezone(UTC) + step).astimezone(now.tzinfo))
        return self._now

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()})"
