"""Running a task now and waiting for its result: ``await scheduler.run_task_now(...)``.

The run is an ordinary run: it goes through the task's executor (its ``max_instances``
and ``timeout`` included), sends the usual events and gets a run record. What is added
is a future per run, resolved by the run's outcome event: its return value, or its
exception raised to the caller. The run is made once (a failure raises at once rather
than being retried behind the caller's back) and is scheduled "now", one microsecond
apart from any other run-now of the task, so every run has an id of its own.

While no run-now waits, no listener is added: executors build no ``TASK_EXECUTED``
event for them.

**Queued run-now** (``run_task_now_queued``): a request that cannot start at once (its
task at ``max_instances``, or its executor without a free worker) waits its turn, higher
priority first: see :mod:`tickwork.schedulers._run_queue`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from tickwork._run_policy import changed_policy
from tickwork.clock import Clock
from tickwork.events import TASK_EXECUTED, TaskExecutionEvent
from tickwork.schedulers._dispatch import Dispatcher
from tickwork.schedulers._events import EventHub
from tickwork.schedulers._run_queue import OUTCOMES, QueuedRun, RunQueue
from tickwork.tasks import Task

__all__ = ["QueuedRun", "RunNow"]

_Key = tuple[str, float]


class RunNow:
    """Starts runs whose callers wait for their outcome (see the module docstring)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        events: EventHub,
        clock: Clock,
        logger: logging.Logger | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self._events = events
        self._clock = clock
        self._logger = logger or logging.getLogger("tickwork")
        self._lock = threading.Lock()
        self._waiting: dict[_Key, concurrent.futures.Future[Any]] = {}
        self._last: datetime | None = None
        #: The requests that wait their turn (run_task_now_queued).
        self.queue = RunQueue(self._start_queued, dispatcher.executor, events, self._logger)

    # -- the queue (see _run_queue.py) -----------------------------------------------------

    def enqueue(
        self,
        task: Task,
        args: Sequence[Any] | None,
        kwargs: Mapping[str, Any] | None,
        priority: int,
    ) -> QueuedRun:
        """Start a run of ``task`` now if it can go first, else queue the request by
        ``priority``; its ``future`` gets the outcome."""
        return self.queue.enqueue(task, args, kwargs, priority)

    def queued(self, task_id: str) -> int:
        """How many run-now requests of ``task_id`` wait."""
        return self.queue.queued(task_id)

    def withdraw(self, request: QueuedRun) -> bool:
        """Take ``request`` out of its queue (its caller gave up); False when it has
        started already."""
        return self.queue.withdraw(request)

    def _start_queued(self, request: QueuedRun) -> concurrent.futures.Future[Any]:
        # A refusal is not reported: the request waits, nothing is skipped.
        return self.start(request.task, request.args, request.kwargs, report_refusal=False)

    # -- plain run-now --------------------------------------------------------------------

    def start(
        self,
        task: Task,
        args: Sequence[Any] | None,
        kwargs: Mapping[str, Any] | None,
        report_refusal: bool = True,
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
                self._events.add(self._resolve, OUTCOMES)
            key = (task.id, run_time.timestamp())
            self._waiting[key] = future
        try:
            self._dispatcher.submit(
                run, [run_time], raise_max_instances=True, report_refusal=report_refusal
            )
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
