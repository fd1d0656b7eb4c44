"""Events: listen to what the scheduler does, filtered by a mask of event codes."""

from __future__ import annotations

import time
from typing import Any

from tickwork import BackgroundScheduler
from tickwork.events import (
    SCHEDULER_SHUTDOWN,
    SCHEDULER_STARTED,
    TASK_ADDED,
    TASK_ERROR,
    TASK_EXECUTED,
    TASK_REMOVED,
    TaskExecutionEvent,
)

results: list[tuple[str, Any]] = []
failures: list[tuple[str, str]] = []
codes: list[int] = []


def on_outcome(event: TaskExecutionEvent) -> None:
    """Called once per run. Keep listeners quick; an exception here is only logged."""
    if event.code == TASK_ERROR:
        assert event.traceback is not None  # the formatted traceback, for your alerting
        failures.append((event.task_id, repr(event.exception)))
    else:
        results.append((event.task_id, event.return_value))


def add(a: int, b: int) -> int:
    return a + b


def divide(a: int, b: int) -> float:
    return a / b


scheduler = BackgroundScheduler()
scheduler.add_listener(on_outcome, TASK_EXECUTED | TASK_ERROR)
scheduler.add_listener(lambda event: codes.append(event.code))  # mask=ALL_EVENTS
scheduler.add_task(add, args=[2, 3], id="add")  # no trigger: run once, now
scheduler.add_task(divide, args=[1, 0], id="divide")
with scheduler:
    time.sleep(0.2)

assert results == [("add", 5)]
assert failures == [("divide", "ZeroDivisionError('division by zero')")]
assert codes.count(TASK_ADDED) == 2
assert SCHEDULER_STARTED in codes
assert codes[-1] == SCHEDULER_SHUTDOWN
assert codes.count(TASK_REMOVED) == 2  # one-shot tasks are removed after their run
