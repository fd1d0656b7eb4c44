"""Running a task now and waiting for its result: ``await scheduler.run_task_now(...)``.

The run is an ordinary run: it goes through the task's executor (its ``max_instances``
and ``timeout`` included), sends the usual events and gets a run record. What is added
is a future per run, resolved by the run's outcome event: its return value, or its
exception raised to the caller. The run is made once (a failure raises at once rather
than being retried behind the caller's back) and is scheduled "now", one microsecond
apart from any other run-now of the task, so every run has an id of its own.

While no run-now waits, no listener is added: executors build no ``TASK_EXECUTED``
event for them.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from tickwork._run_policy import changed_policy
from tickwork.clock import Clock
from tickwork.events import (
    TASK_CANCELLED,
    TASK_ERROR,
    TASK_EXECUTED,
    TASK_TIMEOUT,
    TaskExecutionEvent,
)
from tickwork.schedulers._dispatch import Dispatcher
from tickwork.schedulers._events import EventHub
from tickwork.tasks import Task

__all__ = ["RunNow"]

_OUTCOMES = TASK_EXECUTED | TASK_ERROR | TASK_TIMEOUT | TASK_CANCELLED
_Key = tuple[str, float]


class RunNow:
    """Starts runs whose callers wait for their outcome (see the module docstring)."""

    def __init__(self, dispatcher: Dispatcher, events: EventHub, clock: Clock) -> None:
        self._dispatcher = dispatcher
        self._events = events
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: dict[_Key, concurrent.futures.Future[Any]] = {}
        self._last: datetime | None = None

    def start(
        self, task: Task, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None
    ) -> concurrent.futures.Future[Any]:
        """Hand a run of ``task`` to its executor (with ``args`` / ``kwargs`` instead of
        the task's own, when given) and return the future of its outcome. Raises what
        refuses the run at once: ``MaxInstancesReachedError``, ``InvalidTaskError`` for
        arguments that do not fit the function."""
        run = task._shallow_copy()
        changes: dict[str, Any] = {}
        if args is not None:
            changes["args"] = args
        if kwargs is not None:
            changes["kwargs"] = kwargs
        if changes:
            run._apply(changes)  # checked against the function's signature
        once = changed_policy(run._profile.policy, {"retries": 0})
        if once is not None and once is not run._profile.policy:
            run._set_shared(policy=once)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            run_time = self._clock.now()
            if self._last is not None and run_time <= self._last:
                run_time = self._last + timedelta(microseconds=1)
            self._last = run_time
            if not self._waiting:
                self._events.add(self._resolve, _OUTCOMES)
            key = (task.id, run_time.timestamp())
            self._waiting[key] = future
        try:
            self._dispatcher.submit(run, [run_time], raise_max_instances=True)
        except BaseException:
            self._drop(key)
            raise
        return future

    def _resolve(self, event: TaskExecutionEvent) -> None:
        future = self._drop((event.task_id, event.scheduled_run_time.timestamp()))
        if future is None or future.done():
            return
        if event.code == TASK_EXECUTED:
            future.set_result(event.return_value)
        else:
            future.set_exception(
                event.exception or RuntimeError(f"run of task {event.task_id!r} failed")
            )

    def _drop(self, key: _Key) -> concurrent.futures.Future[Any] | None:
        with self._lock:
            future = self._waiting.pop(key, None)
            if future is not None and not self._waiting:
                self._events.remove(self._resolve)
        return future
