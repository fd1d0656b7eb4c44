"""Run-now requests that wait their turn: ``run_task_now_queued``.

A request waits when its task already runs ``max_instances`` times, or when the task's
executor has no free worker for it (every thread of a thread pool or process of a
process pool busy, or runs already waiting inside the executor; see
:class:`~tickwork.executors.base.WorkerCapacity`). Requests wait in one queue per
executor, served **higher priority first, FIFO within a level**. Whenever a run ends
(its outcome event) or a worker of the executor frees, the queue is walked in that
order, and each request starts if its task has a free ``max_instances`` slot and, for a
run that needs a worker, the executor has one free. A request held by its task's
``max_instances`` does not hold back other tasks' requests (they could not use its
slot); but once a request waits for a worker, no later request that needs one starts in
the same walk, so the worker goes to the earlier request.

**Scheduled runs and queued requests.** Scheduled runs (and ``run_task``,
``run_task_now``, retries) go to the executor as they come due, as without this queue:
they never wait for queued requests, and are never reordered by them. A queued request
takes only a worker that is free with nothing waiting in the executor, so it never goes
before a scheduled run already waiting there either. Queued requests use spare
capacity: an executor kept saturated by its schedule delays them (their caller's
cancellation or timeout bounds the wait), never the reverse. A request started from
the queue is an ordinary run: it holds a ``max_instances`` slot and a worker like any
other run, so a scheduled run coming due meanwhile waits for a worker inside the
executor, or is skipped for ``max_instances``, as behind any run.

Queueing, starting and leaving the queue (the caller gave up) are logged (INFO). While
no request waits, the queue listens to no event and watches no executor: runs pay
nothing for it beyond one check per run in the executors with bounded workers.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import contextlib
import functools
import itertools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from tickwork.events import (
    TASK_CANCELLED,
    TASK_ERROR,
    TASK_EXECUTED,
    TASK_TIMEOUT,
    TaskExecutionEvent,
)
from tickwork.exceptions import MaxInstancesReachedError
from tickwork.executors.base import WorkerCapacity
from tickwork.schedulers._events import EventHub
from tickwork.tasks import Task

__all__ = ["OUTCOMES", "Executor", "QueuedRun", "RunQueue"]

#: The events that end a run (and free its slot and, by then, its worker).
OUTCOMES = TASK_EXECUTED | TASK_ERROR | TASK_TIMEOUT | TASK_CANCELLED


class QueuedRun:
    """A run-now request waiting for a free ``max_instances`` slot of its task and, if
    its run needs one, a free worker of its executor."""

    __slots__ = ("args", "future", "kwargs", "priority", "task", "waits_for", "withdrawn")

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
        #: Why it waits (for the log), as the last walk of its queue found.
        self.waits_for = "requests before it wait"
        #: Set when its caller gave up: a walk holding it drops it instead of putting it
        #: back.
        self.withdrawn = False


class Executor(WorkerCapacity, Protocol):
    """What the queue asks of an executor: its free workers, and its active instances
    of a task (a request whose task is at its ``max_instances`` is not tried)."""

    def active_instances(self, task_id: str) -> int:
        """How many instances of ``task_id`` run in the executor now."""
        ...


#: A queue entry: (-priority, arrival, request); arrivals are unique, so entries sort by
#: priority, then arrival, and requests are never compared.
_Entry = tuple[int, int, QueuedRun]


class RunQueue:
    """The queues of waiting run-now requests, one per executor (see the module
    docstring). ``start`` hands a request's run to its executor and returns the future
    of its outcome, or raises ``MaxInstancesReachedError`` (nothing started)."""

    def __init__(
        self,
        start: Callable[[QueuedRun], concurrent.futures.Future[Any]],
        executor: Callable[[str], Executor | None],
        events: EventHub,
        logger: logging.Logger,
    ) -> None:
        self._start = start
        self._executor = executor
        self._events = events
        self._logger = logger
        self._lock = threading.Lock()
        #: Sorted lists of entries, by executor alias; an alias with none is left out.
        self._queues: dict[str, list[_Entry]] = {}
        #: The executors watched for free workers (those with a queue).
        self._watched: dict[str, Executor] = {}
        self._arrivals = itertools.count()
        self._listening = False
        #: One walk at a time (re-entrant: an executor that runs a task inside send_task
        #: reports its end, and so walks again, from inside a walk).
        self._walking = threading.RLock()

    def enqueue(
        self,
        task: Task,
        args: Sequence[Any] | None,
        kwargs: Mapping[str, Any] | None,
        priority: int,
    ) -> QueuedRun:
        """Queue a request for a run of ``task`` and start it at once if it can go first
        (see the module docstring); its ``future`` gets the outcome."""
        request = QueuedRun(task, args, kwargs, priority)
        alias = task._profile.executor
        with self._lock:
            entry = (-priority, next(self._arrivals), request)
            bisect.insort(self._queue(alias), entry)
        self._walk(alias)
        with self._lock:
            waiting = self._queues.get(alias, [])
            queued = any(entry[2] is request for entry in waiting)
        if queued:
            self._logger.info(
                "run-now of task %r queued (priority %d, %d waiting): %s",
                task.id,
                priority,
                len(waiting),
                request.waits_for,
            )
        return request

    def queued(self, task_id: str) -> int:
        """How many run-now requests of ``task_id`` wait."""
        with self._lock:
            return sum(
                entry[2].task.id == task_id for queue in self._queues.values() for entry in queue
            )

    def withdraw(self, request: QueuedRun) -> bool:
        """Take ``request`` out of its queue (its caller gave up); False when it has
        started already."""
        alias = request.task._profile.executor
        with self._lock:
            request.withdrawn = True
            queue = self._queues.get(alias, [])
            index = next((i for i, entry in enumerate(queue) if entry[2] is request), None)
            if index is None:
                # Started; or held by a walk at this moment, which drops it (see _put_back).
                return False
            del queue[index]
            self._tidy(alias)
        self._left(request)
        return True

    def _left(self, request: QueuedRun) -> None:
        self._logger.info(
            "run-now of task %r (priority %d) left the queue: its caller gave up",
            request.task.id,
            request.priority,
        )
        request.future.cancel()

    # -- walking a queue --------------------------------------------------------------------

    def _walk(self, alias: str) -> None:
        """Start the requests of executor ``alias`` that can start now, in order."""
        with self._walking:
            with self._lock:
                waiting = list(self._queues.get(alias, ()))
            if not waiting:
                return
            executor = self._executor(alias)
            held: set[str] = set()  # tasks at their max_instances
            no_worker = False  # a request before waits for a worker
            for entry in waiting:
                request = entry[2]
                task = request.task
                if task.id in held or (
                    # (Checked again when it starts: this only spares a futile try.)
                    executor is not None
                    and executor.active_instances(task.id) >= task._profile.max_instances
                ):
                    held.add(task.id)
                    request.waits_for = _at_max_instances(task)
                    continue
                free = None if executor is None else executor.free_workers(task)
                if free is not None and (no_worker or free <= 0):
                    no_worker = True
                    request.waits_for = f"every worker of executor {alias!r} is busy"
                    continue
                if not self._take(alias, entry):
                    continue  # withdrawn meanwhile
                if not self._try(alias, entry):
                    held.add(task.id)
            with self._lock:
                self._tidy(alias)

    def _try(self, alias: str, entry: _Entry) -> bool:
        """Start the request of ``entry`` (taken off its queue); put it back and return
        False when its task is at its ``max_instances``."""
        request = entry[2]
        try:
            outcome = self._start(request)
        except MaxInstancesReachedError:
            request.waits_for = _at_max_instances(request.task)
            self._put_back(alias, entry)
            return False
        except BaseException as exc:  # refused for good: the caller gets the error
            _settle(request.future, exc=exc)
            return True
        self._logger.info(
            "run-now of task %r (priority %d) started from the queue",
            request.task.id,
            request.priority,
        )
        _chain(outcome, request.future)
        return True

    def _take(self, alias: str, entry: _Entry) -> bool:
        """Take ``entry`` off its queue to start it; False when it is gone (withdrawn)."""
        with self._lock:
            queue = self._queues.get(alias, [])
            for index, queued in enumerate(queue):
                if queued is entry:
                    del queue[index]
                    return True
            return False

    def _put_back(self, alias: str, entry: _Entry) -> None:
        """Return a request that could not start to its place (its priority and arrival
        are its entry's), unless its caller gave up meanwhile."""
        with self._lock:
            if not entry[2].withdrawn:
                bisect.insort(self._queue(alias), entry)
                return
        self._left(entry[2])

    # -- what makes a walk ------------------------------------------------------------------

    def _queue(self, alias: str) -> list[_Entry]:
        """(Under the lock.) The queue of ``alias``, made when missing: from then on, the
        end of every run and the workers of the executor freeing walk it."""
        queue = self._queues.get(alias)
        if queue is None:
            queue = self._queues[alias] = []
            executor = self._executor(alias)
            if executor is not None:
                executor.watch_workers(functools.partial(self._workers_freed, alias))
                self._watched[alias] = executor
            if not self._listening:
                self._listening = True
                self._events.add(self._run_ended, OUTCOMES)
        return queue

    def _tidy(self, alias: str) -> None:
        """(Under the lock.) Forget an empty queue: stop watching its executor, and stop
        listening once no request waits at all."""
        if alias not in self._queues or self._queues[alias]:
            return
        del self._queues[alias]
        executor = self._watched.pop(alias, None)
        if executor is not None:
            executor.watch_workers(None)
        if self._listening and not self._queues:
            self._listening = False
            self._events.remove(self._run_ended)

    def _run_ended(self, event: TaskExecutionEvent) -> None:
        """A run ended (its executor freed its slot before reporting it): walk the queues
        holding requests of its task."""
        with self._lock:
            aliases = [
                alias
                for alias, queue in self._queues.items()
                if any(entry[2].task.id == event.task_id for entry in queue)
            ]
        for alias in aliases:
            self._walk(alias)

    def _workers_freed(self, alias: str) -> None:
        """A worker of executor ``alias`` freed (called by the executor, from any
        thread): walk its queue."""
        try:
            self._walk(alias)
        except Exception:  # (the executor's worker must go on)
            self._logger.exception("run-now queue of executor %r: a walk failed", alias)


def _at_max_instances(task: Task) -> str:
    return f"its max_instances ({task._profile.max_instances}) runs are active"


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
