"""Module-level task functions and a task builder for the store tests.

Stored tasks name their function as ``"module:qualname"``, so the functions live in a
module the test process (and the crash test's writer subprocess) can import by name.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tickwork.tasks import Task
from tickwork.triggers import BaseTrigger, DateTrigger, IntervalTrigger

#: The time the store tests treat as "now".
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def noop(*args: Any, **kwargs: Any) -> None:
    """Do nothing: the function of most test tasks."""


def other(*args: Any, **kwargs: Any) -> None:
    """Another function, for updates that change ``fn``."""


def make_task(
    task_id: str,
    next_run_time: datetime | None = NOW,
    trigger: BaseTrigger | None = None,
    **fields: Any,
) -> Task:
    """A task with every field set (as the scheduler would), ready for a store."""
    values: dict[str, Any] = {
        "fn": noop,
        "args": (1, "two"),
        "kwargs": {"when": NOW, "delay": timedelta(seconds=5)},
        "coalesce": True,
        "max_instances": 1,
        "mistrigger_grace_time": 30.0,
    }
    values.update(fields)
    if trigger is None:
        trigger = IntervalTrigger(minutes=5, start_at=NOW, timezone="Europe/Paris")
    return Task(id=task_id, trigger=trigger, next_run_time=next_run_time, **values)


def at(minutes: float) -> datetime:
    """``NOW`` plus ``minutes`` (negative: in the past)."""
    return NOW + timedelta(minutes=minutes)


def once(when: datetime) -> DateTrigger:
    """A date trigger firing at ``when``."""
    return DateTrigger(when)


class ExplodingTrigger(BaseTrigger):
    """Fires first at ``run_at``; asked for any time after that, it raises, as a trigger
    whose arithmetic overflows does (``interval`` of 3,000,000 days did)."""

    def __init__(self, run_at: datetime) -> None:
        self.run_at = run_at

    def get_next_trigger_time(
        self, timezone: Any, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        if previous_time is None:
            return self.run_at
        raise OverflowError("date value out of range")

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "run_at": self.run_at}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.run_at = state["run_at"]

    def __repr__(self) -> str:
        return f"ExplodingTrigger({self.run_at.isoformat()})"
