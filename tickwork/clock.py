"""Where a scheduler gets the time from.

Every scheduler asks its clock, never ``datetime.now()`` directly, so tests can drive
time by hand with :class:`FakeClock` instead of sleeping: advancing a fake clock wakes
every scheduler that uses it, which then runs whatever became due.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

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
        self._now = start
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
        self._now = when
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback()

    def advance(self, delta: timedelta | None = None, *, seconds: float = 0) -> datetime:
        """Move forward by ``delta`` plus ``seconds`` and return the new time."""
        step = (delta or timedelta()) + timedelta(seconds=seconds)
        if step < timedelta(0):
            raise ValueError(f"FakeClock.advance cannot go backwards ({step!r}); use set()")
        self.set(self._now + step)
        return self._now

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()})"
