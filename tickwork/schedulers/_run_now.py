"""Running a task now and waiting for its result: ``await scheduler.run_task_now(...)``.

The run is an ordinary run: it goes through the task's executor (its ``max_instances``
and ``timeout`` included), sends the usual events and gets a run record. What is added
is a future per run, resolved by the run's outcome event: its return value, or its
exception raised to the caller. The run is made once (a failure raises at once rather
than being retried behind the caller's back) and is scheduled "now", one microsecond
apart from any other run-now of the task, so every run has an id of its own.

While no run-now waits, no listener is added: executors build no ``TASK_EXECUTED``
event for them.

**Queued run-now** (``run_task_now_queued``): when the task already runs
``max_instances`` times, the request waits instead of being refused, in a queue per
task served **higher priority first, FIFO within a level**. Each run of the task that
ends (an outcome event: its slot is free by then) starts the next requests that fit.
Queueing and starting are logged (INFO), and a request whose caller gives up (its
coroutine cancelled, the sync twin's timeout) leaves the queue, logged too.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import heapq
import itertools
import logging
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
from tickwork.exceptions import MaxInstancesReachedError
from tickwork.schedulers._dispatch import Dispatcher
from tickwork.schedulers._events import EventHub
from tickwork.tasks import Task

__all__ = ["QueuedRun", "RunNow"]

_OUTCOMES = TASK_EXECUTED | TASK_ERROR | TASK_TIMEOUT | TASK_CANCELLED
_Key = tuple[str, float]


class QueuedRun:
    """A run-now request waiting for a free ``max_instances`` slot of its task."""

    __slots__ = ("args", "future", "kwargs", "priority", "task")

    def __init__(
        self,
        task: Task,
        args: Sequence[Any] | None,
        kwargs: Mapping[str, Any] | None,
        priority: int,
    ) -> None:
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.priority = priority
        #: The outcome of the run, once started and ended.
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()


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
        #: Queued requests per task id: a heap of (-priority, arrival, request).
        self._queues: dict[str, list[tuple[int, int, QueuedRun]]] = {}
        self._arrivals = itertools.count()
        self._listening = False
        self._draining = threading.RLock()

    # -- the queue ------------------------------------------------------------------------

    def enqueue(
        self,
        task: Task,
        args: Sequence[Any] | None,
        kwargs: Mapping[str, Any] | None,
        priority: int,
    ) -> QueuedRun:
        """Start a run of ``task`` now if a slot is free and nobody waits before it, else
        queue the request by ``priority``; its ``future`` gets the outcome."""
        request = QueuedRun(task, args, kwargs, priority)
        with self._lock:
            queue = self._queues.setdefault(task.id, [])
            heapq.heappush(queue, (-priority, next(self._arrivals), request))
            self._listen()
            position = len(queue)
        if position == 1:
            self._drain(task.id)
        with self._lock:
            waiting = self._queues.get(task.id, [])
            queued = any(entry[2] is request for entry in waiting)
        if queued:
            self._logger.info(
                "run-now of task %r queued (priority %d, %d waiting): its max_instances "
                "(%d) runs are active",
                task.id,
                priority,
                len(waiting),
                task._profile.max_instances,
            )
        return request

    def queued(self, task_id: str) -> int:
        """How many run-now requests of ``task_id`` wait."""
        with self._lock:
            return len(self._queues.get(task_id, ()))

    def withdraw(self, request: QueuedRun) -> bool:
        """Take ``request`` out of its queue (its caller gave up); False when it has
        started already."""
        with self._lock:
            queue = self._queues.get(request.task.id)
            if queue is None:
                return False
            for index, (_, _, queued) in enumerate(queue):
                if queued is request:
                    queue.pop(index)
                    heapq.heapify(queue)
                    if not queue:
                        del self._queues[request.task.id]
                        self._unlisten()
                    break
            else:
                return False
        self._logger.info(
            "run-now of task %r (priority %d) left the queue: its caller gave up",
            request.task.id,
            request.priority,
        )
        request.future.cancel()
        return True

    def _drain(self, task_id: str) -> bool:
        """Start queued requests of ``task_id`` while its executor takes them; return
        whether one started (False: the head waits). One drain at a time: each request
        is taken off the queue before it is handed over, and put back if refused."""
        started = False
        with self._draining:
            while True:
                with self._lock:
                    queue = self._queues.get(task_id)
                    if not queue:
                        self._unlisten()
                        return started
                    entry = heapq.heappop(queue)
                    if not queue:
                        del self._queues[task_id]
                request = entry[2]
                try:
                    outcome = self.start(
                        request.task, request.args, request.kwargs, report_refusal=False
                    )
                except MaxInstancesReachedError:
                    with self._lock:  # (its place: the same priority and arrival)
                        heapq.heappush(self._queues.setdefault(task_id, []), entry)
                    return started
                except BaseException as exc:  # refused for good: the caller gets the error
                    _settle(request.future, exc=exc)
                    continue
                started = True
                self._logger.info(
                    "run-now of task %r (priority %d) started from the queue",
                    task_id,
                    request.priority,
                )
                _chain(outcome, request.future)

    def _listen(self) -> None:
        """(Under the lock.) Follow the outcomes of every run while requests wait."""
        if not self._listening:
            self._listening = True
            self._events.add(self._freed, _OUTCOMES)

    def _unlisten(self) -> None:
        """(Under the lock.)"""
        if self._listening and not self._queues:
            self._listening = False
            self._events.remove(self._freed)

    def _freed(self, event: TaskExecutionEvent) -> None:
        """A run ended (the executor freed its slot before reporting it): start what
        waits for that task."""
        if event.task_id in self._queues:
            self._drain(event.task_id)

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
                self._events.add(self._resolve, _OUTCOMES)
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


def _chain(source: concurrent.futures.Future[Any], target: concurrent.futures.Future[Any]) -> None:
    """Pass ``source``'s outcome on to ``target`` (unless its caller gave up)."""

    def copy(done: concurrent.futures.Future[Any]) -> None:
        exc = done.exception()
        if exc is not None:
            _settle(target, exc=exc)
        else:
            _settle(target, result=done.result())

    source.add_done_callback(copy)


def _settle(
    future: concurrent.futures.Future[Any], result: Any = None, exc: BaseException | None = None
) -> None:
    """Set ``future``'s outcome unless it is settled already (cancelled by its caller)."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)
