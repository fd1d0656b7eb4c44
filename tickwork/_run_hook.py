"""The hook a scheduler offers around each instance it hands to an executor.

Kept apart from any tracing library: the scheduler only knows this Protocol, so importing
tickwork never imports OpenTelemetry (see :mod:`tickwork.tracing`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from tickwork.tasks import Task

__all__ = ["RunHook"]


class RunHook(Protocol):
    """Given the task about to be sent to its executor, the runs and their attempt,
    returns the task to send instead (a copy whose function does more, say), or the same
    task. Called once per instance, on the thread of the scheduler's pass; it must be
    quick and must not raise."""

    def wrap(self, task: Task, run_times: list[datetime], attempt: int) -> Task: ...
