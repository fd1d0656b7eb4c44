"""Extending: a trigger of your own, usable by instance or by alias."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from tickwork import BackgroundScheduler, FakeClock
from tickwork.executors import DebugExecutor
from tickwork.triggers import BaseTrigger, trigger_registry


class TimetableTrigger(BaseTrigger):
    """Fire at each of a fixed list of times (e.g. a published timetable), then stop."""

    __slots__ = ("times",)
    alias = "timetable"

    def __init__(self, times: list[datetime]) -> None:
        if any(t.tzinfo is None for t in times):
            raise ValueError("timetable times must be timezone-aware")
        self.times = sorted(times)

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        # The contract: strictly after previous_time; None when there is no next time.
        # The first time (previous_time None) may be in the past: the scheduler's
        # misfire rules (coalesce, mistrigger_grace_time) decide about late runs.
        for time in self.times:
            if previous_time is None or time > previous_time:
                return time
        return None

    def __getstate__(self) -> dict[str, Any]:
        # Versioned and serializer-friendly (datetimes are fine), so persistent stores
        # can keep tasks with this trigger.
        return {"version": 1, "times": list(self.times)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._check_state_version(state)
        self.times = list(state["times"])

    def __repr__(self) -> str:
        return f"TimetableTrigger({len(self.times)} times)"


# Optional: an alias, so add_task(fn, "timetable", times=[...]) works too.
trigger_registry.register("timetable", TimetableTrigger)

# -- check it ---------------------------------------------------------------------------

times = [datetime(2026, 6, 1, hour, 15, tzinfo=UTC) for hour in (9, 12, 17)]
trigger = TimetableTrigger(times)
assert trigger.get_next_trigger_time(UTC, None) == times[0]
assert trigger.get_next_trigger_time(UTC, times[0]) == times[1]
assert trigger.get_next_trigger_time(UTC, times[2]) is None
assert trigger == TimetableTrigger(list(reversed(times)))  # equal when the states are

scheduler = BackgroundScheduler(
    clock=FakeClock(datetime(2026, 6, 1, 8, 0, tzinfo=UTC)),
    executors={"default": DebugExecutor()},
)
scheduler.add_task(print, "timetable", times=times, args=["departure"], id="departures")
with scheduler:
    assert scheduler.preview_task_runs("departures", 5) == times
