"""Where a scheduler is in its life (its own module: the task API reads it too)."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["SchedulerState"]


class SchedulerState(IntEnum):
    """Where a scheduler is in its life."""

    STOPPED = 0
    RUNNING = 1
    PAUSED = 2
