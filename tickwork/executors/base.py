"""The executor contract: how a due run of a task gets executed.

The scheduler decides *whether* a run happens (misfire grace, coalescing); an executor
only runs what it is sent, counts the active runs of each task to enforce
``max_instances``, and reports each run's outcome as an event.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import traceback as tb
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from tickwork.events import TASK_ERROR, TASK_EXECUTED, TaskExecutionEvent
from tickwork.exceptions import MaxInstancesReachedError
from tickwork.tasks import Task

__all__ = ["BaseExecutor", "ExecutorHost", "await_per_run", "run_coroutine_task", "run_task"]


class ExecutorHost(Protocol):
    """All an executor may ask of the scheduler that starts it: whether any listener
    wants events with a code (a ``TASK_EXECUTED`` event nobody listens to is never
    built), and where to send the events of finished runs. Executors never see the
    scheduler itself."""

    def wants(self, code: int) -> bool:
        """True when some listener wants events with this code."""
        ...

    def emit(self, event: Any) -> None:
        """Send an event to the listeners (never raises)."""
        ...


class BaseExecutor(ABC):
    """Runs tasks' due runs.

    Contract:

    * :meth:`send_task` never blocks on the task itself; it raises
      :class:`~tickwork.exceptions.MaxInstancesReachedError` (and runs nothing) when
      ``task.max_instances`` runs of the task are already active in this executor.
    * All ``run_times`` sent together are one *instance*: they run one after the other,
      each producing a ``TASK_EXECUTED`` or ``TASK_ERROR`` event with its
      ``scheduled_run_time``.
    * An exception in a task is logged with its traceback and reported; it never stops
      the executor or the scheduler.
    * :meth:`shutdown` with ``wait=True`` lets active runs finish (it never cancels
      them); with ``wait=False`` it returns at once and active runs finish on their own
      where the backend allows (coroutines on a loop that keeps running, threads).
      After it, :meth:`send_task` raises :class:`RuntimeError` until the next
      :meth:`start`.
    """

    def __init__(self) -> None:
        self.alias: str | None = None
        self._host: ExecutorHost | None = None
        #: Whether the scheduler has a listener for an event code, asked when a run ends:
        #: a ``TASK_EXECUTED`` event nobody listens to is never built.
        self._wants: Callable[[int], bool] = _wants_everything
        self._instances: dict[str, int] = {}
        self._instances_lock = threading.Lock()
        # Notified whenever the last active instance finishes (see wait_until_idle).
        self._idle = threading.Condition(self._instances_lock)
        #: Set (under the lock) by shutdown: send_task refuses runs from then on, so no
        #: run slips in after shutdown(wait=True) looked for active ones.
        self._shut_down = False
        self.logger = logging.getLogger(f"tickwork.executors.{type(self).__name__}")
        _executors.add(self)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, host: ExecutorHost, alias: str) -> None:
        """Prepare to run tasks, reporting to ``host``; called when the scheduler starts
        or the executor is added to a running scheduler."""
        self._host = host
        self.alias = alias
        self._wants = host.wants
        with self._instances_lock:
            self._shut_down = False

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting runs; with ``wait`` return only when active runs are done."""
        self._stop_accepting()

    def _stop_accepting(self) -> None:
        """Make :meth:`send_task` refuse runs; the first step of every ``shutdown``."""
        with self._instances_lock:
            self._shut_down = True

    def _shut_down_error(self) -> RuntimeError:
        """What :meth:`send_task` raises after shutdown (as ``concurrent.futures``)."""
        return RuntimeError(f"cannot run tasks after shutdown (executor {self.alias!r})")

    async def shutdown_async(self, wait: bool = True) -> None:
        """The awaitable form of :meth:`shutdown`, for schedulers living on a loop."""
        await asyncio.to_thread(self.shutdown, wait)

    # -- running --------------------------------------------------------------------------

    def send_task(self, task: Task, run_times: Sequence[datetime]) -> None:
        """Start one instance of ``task`` for ``run_times`` (oldest first)."""
        with self._instances_lock:
            if self._shut_down:
                raise self._shut_down_error()
            active = self._instances.get(task.id, 0)
            limit = task._profile.max_instances  # (not the property: this runs per run)
            if active >= limit:
                raise MaxInstancesReachedError(task.id, limit)
            self._instances[task.id] = active + 1
        try:
            self.do_send_task(task, list(run_times))
        except BaseException:
            self._release_instance(task.id)
            raise

    @abstractmethod
    def do_send_task(self, task: Task, run_times: list[datetime]) -> None:
        """Hand the instance to the backend. When it is done, the backend calls
        :meth:`_run_finished` exactly once with the run's events."""

    def active_instances(self, task_id: str) -> int:
        """How many instances of ``task_id`` are running in this executor now."""
        with self._instances_lock:
            return self._instances.get(task_id, 0)

    def _release_instance(self, task_id: str) -> None:
        with self._instances_lock:
            active = self._instances.get(task_id, 0) - 1
            if active > 0:
                self._instances[task_id] = active
            else:
                self._instances.pop(task_id, None)
                if not self._instances:
                    self._idle.notify_all()

    def runs_caller(self) -> bool:
        """True when called from inside one of this executor's active runs. A shutdown
        that waits for the runs to finish asks first: it must not wait for its own caller
        (a task that shuts its scheduler down would wait for itself forever)."""
        return False

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Block until no instance is active (or ``timeout`` seconds passed); return
        whether it is idle. The scheduler calls it on shutdown, before it runs the
        shutdown-trigger tasks, so a cleanup never overlaps a tick still running."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._instances, timeout)

    async def wait_until_idle_async(self, timeout: float | None = None) -> bool:
        """:meth:`wait_until_idle` without blocking the calling event loop."""
        return await asyncio.to_thread(self.wait_until_idle, timeout)

    def active_task_ids(self) -> list[str]:
        """The ids of the tasks with a run active in this executor now."""
        with self._instances_lock:
            return sorted(self._instances)

    def cancel_active(self, reason: str) -> None:
        """Cancel the active runs that can be cancelled; the scheduler calls it when a
        shutdown's ``timeout`` passed. Coroutines can (the asyncio executor cancels
        them, and they end as ``TASK_ERROR`` with a ``CancelledError`` saying
        ``reason``); a thread cannot be stopped, nor can this base class stop anything,
        so the default does nothing and such runs go on, reported by the scheduler."""

    def _run_finished(self, task_id: str, events: Sequence[TaskExecutionEvent]) -> None:
        """Release the instance slot, then report each run's event."""
        self._release_instance(task_id)
        if not events:
            return
        host = self._host
        for event in events:
            if event.code == TASK_ERROR:
                self.logger.error(
                    "task %r (run scheduled at %s) raised:\n%s",
                    task_id,
                    event.scheduled_run_time.isoformat(),
                    event.traceback,
                )
            if host is not None:
                host.emit(event)

    def _run_crashed(
        self, task_id: str, store: str | None, run_times: Sequence[datetime], exc: BaseException
    ) -> None:
        """Report every run of an instance the backend lost (e.g. a dead worker process)."""
        text = "".join(tb.format_exception(exc))
        self._run_finished(
            task_id,
            [
                TaskExecutionEvent(
                    TASK_ERROR, task_id, store, run_time, exception=exc, traceback=text
                )
                for run_time in run_times
            ],
        )

    def _execute(
        self,
        task_id: str,
        store: str | None,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kwargs: dict[str, Any],
        run_times: Sequence[datetime],
    ) -> None:
        """Run an instance of a plain function in the calling (worker) thread, then
        finish it: the work a thread pool does, with no future callback to hop through.

        Like :func:`run_task`, except that a ``TASK_EXECUTED`` event is built only when a
        listener wants it when the run ends (errors are always logged and built)."""
        events: list[TaskExecutionEvent] = []
        try:
            _call_per_run(task_id, store, fn, args, kwargs, run_times, events, self._wants)
        finally:
            self._run_finished(task_id, events)

    def _reset_after_fork(self) -> None:
        """In a forked child: no run of the parent is active here (its threads are gone,
        it reports its own runs), and the lock may have been held by a parent thread."""
        self._instances = {}
        self._instances_lock = threading.Lock()
        self._idle = threading.Condition(self._instances_lock)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} alias={self.alias!r}>"


#: Every executor, for the after-fork hook.
_executors: weakref.WeakSet[BaseExecutor] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for executor in list(_executors):
        executor._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _wants_everything(code: int) -> bool:
    return True


def _error_event(
    task_id: str, store: str | None, run_time: datetime, exc: BaseException
) -> TaskExecutionEvent:
    text = "".join(tb.format_exception(exc))
    return TaskExecutionEvent(TASK_ERROR, task_id, store, run_time, exception=exc, traceback=text)


def run_task(
    task_id: str,
    store: str | None,
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    run_times: Sequence[datetime],
) -> list[TaskExecutionEvent]:
    """Call a plain function once per run time and return one event per run.

    Coroutine functions are run to completion with :func:`asyncio.run`, so a thread or
    process executor can run ``async def`` tasks too.
    """
    events: list[TaskExecutionEvent] = []
    _call_per_run(task_id, store, fn, args, kwargs, run_times, events, None)
    return events


def _call_per_run(
    task_id: str,
    store: str | None,
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    run_times: Sequence[datetime],
    events: list[TaskExecutionEvent],
    wants: Callable[[int], bool] | None,
) -> None:
    """Call ``fn`` once per run time, appending one event per run to ``events``: an error
    event for an exception, and ``TASK_EXECUTED`` unless ``wants`` says no listener wants
    it. A ``BaseException`` from the task (SystemExit & co.) is reported for the runs not
    done yet, then propagates."""
    done = 0
    try:
        for run_time in run_times:
            try:
                result = fn(*args, **kwargs)
                if asyncio.iscoroutine(result):
                    result = asyncio.run(result)
            except Exception as exc:  # the task's failure is reported, never propagated
                events.append(_error_event(task_id, store, run_time, exc))
            else:
                if wants is None or wants(TASK_EXECUTED):
                    events.append(
                        TaskExecutionEvent(
                            TASK_EXECUTED, task_id, store, run_time, return_value=result
                        )
                    )
            done += 1
    except BaseException as exc:
        events.extend(_error_event(task_id, store, t, exc) for t in run_times[done:])
        raise


async def run_coroutine_task(
    task_id: str,
    store: str | None,
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    run_times: Sequence[datetime],
) -> list[TaskExecutionEvent]:
    """Await an ``async def`` task once per run time and return one event per run."""
    events: list[TaskExecutionEvent] = []
    await await_per_run(task_id, store, fn, args, kwargs, run_times, events, None)
    return events


async def await_per_run(
    task_id: str,
    store: str | None,
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    run_times: Sequence[datetime],
    events: list[TaskExecutionEvent],
    wants: Callable[[int], bool] | None,
) -> None:
    """:func:`_call_per_run` for ``async def`` tasks: await ``fn`` once per run time,
    appending one event per run. Cancelled (or a ``BaseException`` from the task), the
    runs not done yet are reported failed, then it propagates; a cancellation's event
    carries a fresh ``CancelledError`` (the one raised holds this frame) with the
    canceller's message, so ``run.cancel("why")`` says why."""
    done = 0
    try:
        for run_time in run_times:
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:  # the task's failure is reported, never propagated
                events.append(_error_event(task_id, store, run_time, exc))
            else:
                if wants is None or wants(TASK_EXECUTED):
                    events.append(
                        TaskExecutionEvent(
                            TASK_EXECUTED, task_id, store, run_time, return_value=result
                        )
                    )
            done += 1
    except BaseException as exc:
        reported: BaseException = exc
        if isinstance(exc, asyncio.CancelledError):
            reported = asyncio.CancelledError(str(exc) or "run cancelled")
        events.extend(_error_event(task_id, store, t, reported) for t in run_times[done:])
        raise
