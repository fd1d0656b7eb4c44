"""A trigger for fixed-delay runs: each run a set time after the previous one *ended*."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from tickwork.exceptions import InvalidTriggerError
from tickwork.triggers.base import BaseTrigger
from tickwork.triggers.interval import MAX_INTERVAL
from tickwork.utils import ClassSignature

__all__ = ["DelayTrigger"]

_UNIT_NAMES = ("weeks", "days", "hours", "minutes", "seconds")


class DelayTrigger(BaseTrigger):
    """Run first at ``start_at`` (or as soon as the task is scheduled), then each next run
    ``weeks + days + hours + minutes + seconds`` after the previous run *ended* (with
    success, an error, a timeout or a cancel alike): a fixed delay between runs, not a
    fixed rate. A run that takes 3 s with ``seconds=10`` runs every 13 s.

    The trigger alone cannot know when a run ends; the scheduler does. What the trigger
    answers is the earliest the next run could be, one delay after the run starts (a run
    takes no less than nothing); its :attr:`spacing` tells the scheduler to move the
    task's next run time to the run's end plus the delay when the run ends (on any
    store, written under the store's lock, so on a shared store no member of the fleet
    starts the next run sooner), and to *hold* the task, neither starting a second run
    nor reporting a skipped one, if that earliest time comes while the run is still in
    progress. Runs of such a task never overlap, so it is refused with ``coalesce=False``
    or ``max_instances`` above 1 (see :mod:`tickwork.schedulers._spacing`).

    ``timezone`` is the zone a naive ``start_at`` is read in (default: the scheduler's).
    Values may be fractional (``seconds=0.5``). Refused with
    :class:`~tickwork.exceptions.InvalidTriggerError`, naming the value: lengths that are
    not finite numbers, a delay that is not positive, or longer than 1000 years.
    """

    __slots__ = ("delay", "spacing", "start_at", "timezone")
    alias = "delay"
    __signature__ = ClassSignature()

    def __init__(
        self,
        weeks: float = 0,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        start_at: datetime | date | str | None = None,
        timezone: str | tzinfo | None = None,
    ) -> None:
        units = (weeks, days, hours, minutes, seconds)
        for name, value in zip(_UNIT_NAMES, units, strict=True):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidTriggerError(f"delay {name} must be a number, got {value!r}")
        given = ", ".join(f"{k}={v!r}" for k, v in zip(_UNIT_NAMES, units, strict=True) if v)
        try:
            delay = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
        except (ValueError, OverflowError):
            delay = None
        if delay is None or not all(map(math.isfinite, units)) or delay > MAX_INTERVAL:
            raise InvalidTriggerError(
                f"the delay must be a finite length of at most 1000 years, got {given}"
            )
        if delay <= timedelta(0):
            raise InvalidTriggerError(
                f"the delay between runs must be positive, got {given or 'seconds=0'}; "
                "a task that runs again as soon as it ends needs a delay of at least a "
                "fraction of a second (seconds=0.1)"
            )
        self.delay = delay
        self.spacing = delay.total_seconds()
        self.timezone = self._resolve_timezone(timezone)
        self.start_at = self._resolve_datetime(start_at, self.timezone, "start_at")

    @property
    def shareable(self) -> bool:
        """True: the trigger never changes once built."""
        return True

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        """The first run: ``start_at``, else ``now``. After ``previous_time``: one delay
        after the later of ``previous_time`` and ``now`` (the run about to start, or just
        started, ends no sooner than that); the scheduler moves it to the run's end plus
        the delay when the run ends."""
        if previous_time is None:
            first = self.start_at if self.start_at is not None else now
            if first is None:
                raise InvalidTriggerError("a delay trigger without start_at needs 'now'")
            return first
        base = previous_time if now is None or now <= previous_time else now
        try:
            return (base.astimezone(UTC) + self.delay).astimezone(base.tzinfo)
        except OverflowError:  # past the year 9999
            return None

    def __getstate__(self) -> dict[str, Any]:
        """The trigger's state (see :class:`~tickwork.triggers.base.BaseTrigger`)."""
        return {
            "version": 1,
            "delay": self.delay,
            "start_at": self.start_at,
            "timezone": self.timezone,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._check_state_version(state)
        self.delay = state["delay"]
        self.start_at = state["start_at"]
        self.timezone = state["timezone"]
        self.spacing = self.delay.total_seconds() if type(self.delay) is timedelta else None

    def __repr__(self) -> str:
        parts = [f"delay={self.delay}"]
        if self.start_at is not None:
            parts.append(f"start_at={self.start_at.isoformat()}")
        return f"DelayTrigger({', '.join(parts)})"
