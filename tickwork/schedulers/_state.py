"""Where a scheduler is in its life (its own module: the task API reads it too)."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Lifecycle", "SchedulerState"]


class SchedulerState(IntEnum):
    """Where a scheduler is in its life."""

    STOPPED = 0
    RUNNING = 1
    PAUSED = 2


class Lifecycle:
    """The scheduler's state, in one object the parts that ask it share (the façade
    changes it; the task manager reads it on every add, as one attribute)."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = SchedulerState.STOPPED
