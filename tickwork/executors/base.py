"""The executor contract: how a due run of a task gets executed.

The scheduler decides *whether* a run happens (misfire grace, coalescing); an executor
only runs what it is sent, counts the active runs of each task to enforce
``max_instances``, and reports each run's outcome as an event.

Every run is logged on the executor's logger (``tickwork.executors.<class name>``): at
DEBUG when it starts and when it ends (with its duration), at ERROR with the traceback
when it raises. Each of these records carries the ``extra`` fields ``task_id``,
``run_time`` (the scheduled run time, a datetime) and ``duration`` (seconds, ``None`` on
a start line), for JSON log formatters; the scheduler's records of runs that did not
start (missed, ``max_instances``) carry the same fields. With DEBUG off, the start and
end lines cost one check per instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
import threading
import time
import traceback as tb
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from types import FrameType
from typing import Any, Protocol

from tickwork._task_fields import is_coroutine_function
from tickwork.events import (
    TASK_CANCELLED,
    TASK_ERROR,
    TASK_EXECUTED,
    TASK_TIMEOUT,
    TaskExecutionEvent,
)
from tickwork.exceptions import MaxInstancesReachedError, RunCancelledError, RunTimeoutError
from tickwork.executors._watchdog import Watchdog
from tickwork.tasks import Task

__all__ = [
    "BaseExecutor",
    "ExecutorHost",
    "WorkerCapacity",
    "await_per_run",
    "run_coroutine_task",
    "run_log_extra",
    "run_task",
]

#: The clock run durations are measured with (a global name: read once per run).
_clock = time.perf_counter

#: Code flags of functions whose frames may be suspended (generators, coroutines).
_SUSPENDABLE = (
    inspect.CO_GENERATOR
    | inspect.CO_COROUTINE
    | inspect.CO_ASYNC_GENERATOR
    | inspect.CO_ITERABLE_COROUTINE
)

#: What asyncio says when an object of one event loop is used on another.
_FOREIGN_LOOP_MESSAGES = (
    "attached to a different loop",
    "bound to a different event loop",
    "belongs to a different loop",
)


def run_log_extra(
    task_id: str, run_time: datetime, duration: float | None = None
) -> dict[str, Any]:
    """The ``extra`` fields of a log record about one run of a task: ``task_id``,
    ``run_time`` (its scheduled time) and ``duration`` (seconds, ``None`` when it did not
    run or has not ended yet). Every run-related record carries all three."""
    return {"task_id": task_id, "run_time": run_time, "duration": duration}


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


class WorkerCapacity(Protocol):
    """How busy an executor's workers are: all the run-now queue asks of an executor
    (``run_task_now_queued`` waits for a free worker, so that its priorities hold when
    the executor is saturated; see :mod:`tickwork.schedulers._run_queue`).

    The bounded runs of one executor share one set of workers (a thread pool, a process
    pool); runs that need no worker of a limited set (coroutines on the asyncio
    executor, runs sent to a broker) are *unbounded*."""

    def free_workers(self, task: Task) -> int | None:
        """How many more instances like ``task``'s could be handed over now and start at
        once, ahead of nothing already waiting in the executor (0: saturated); ``None``
        when such runs never wait for a worker."""
        ...

    def watch_workers(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` (from any thread, with none of the executor's locks held;
        it must not raise) whenever a worker frees, after :meth:`free_workers` counts it
        free; ``None`` stops. One watcher at a time. Not watched, the executor pays
        nothing for it beyond one check per run."""
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
        #: Deadlines of runs in threads with a timeout (made at the first one).
        self._deadlines: Watchdog | None = None
        # Notified whenever the last active instance finishes (see wait_until_idle).
        self._idle = threading.Condition(self._instances_lock)
        #: Threads waiting on ``_idle`` (changed under the lock): the last run to end
        #: notifies only when one waits. Nearly always none does (only shutdown waits),
        #: and a Condition's notify_all costs three Python calls, at every run's end.
        self._idle_waiters = 0
        #: Set (under the lock) by shutdown: send_task refuses runs from then on, so no
        #: run slips in after shutdown(wait=True) looked for active ones.
        self._shut_down = False
        self.logger = logging.getLogger(f"tickwork.executors.{type(self).__name__}")
        _executors.add(self)

    @property
    def logger(self) -> logging.Logger:
        """Where this executor logs its runs (``tickwork.executors.<class name>``)."""
        return self._logger

    @logger.setter
    def logger(self, logger: logging.Logger) -> None:
        self._logger = logger
        #: ``Logger._cache`` (level -> enabled), which CPython's logging fills in
        #: ``isEnabledFor`` and clears in place on every level change; read by
        #: _debug_logger. An empty dict of our own where logging has none: always a miss.
        self._level_cache: dict[int, bool] = getattr(logger, "_cache", {})

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

    def validate_task(self, task: Task) -> None:
        """Raise a :class:`~tickwork.exceptions.ConfigurationError` (``InvalidTaskError``)
        if this executor could never run ``task``; called by ``add_task`` on a scheduler
        that has the executor. The default accepts every task."""

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
        # (AsyncIOExecutor._run_coroutine has a copy inline, for speed: change both.)
        with self._instances_lock:
            active = self._instances.get(task_id, 0) - 1
            if active > 0:
                self._instances[task_id] = active
            else:
                self._instances.pop(task_id, None)
                if not self._instances and self._idle_waiters:
                    self._idle.notify_all()

    def free_workers(self, task: Task) -> int | None:
        """See :class:`WorkerCapacity`; the default: no limit (``None``). Executors with
        a bounded pool of workers override it and :meth:`watch_workers`."""
        return None

    def watch_workers(self, callback: Callable[[], None] | None) -> None:
        """See :class:`WorkerCapacity`; the default has no workers to watch."""

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
            self._idle_waiters += 1
            try:
                return self._idle.wait_for(lambda: not self._instances, timeout)
            finally:
                self._idle_waiters -= 1

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

    def cancel_run(self, task_id: str, run_time: datetime | None, reason: str) -> int:
        """Cancel the active run of ``task_id`` scheduled at ``run_time`` (every active
        run of the task when ``None``); return how many runs were cancelled. A cancelled
        run ends with a ``TASK_CANCELLED`` event whose ``exception`` is a
        :class:`~tickwork.exceptions.RunCancelledError` saying ``reason`` (runs of its
        instance that had not started yet end so too). What cannot be stopped is not
        counted: the default stops nothing, the asyncio executor cancels coroutines,
        the process pool terminates the worker process (and starts another), threads
        run on."""
        return 0

    def _run_finished(self, task_id: str, events: Sequence[TaskExecutionEvent]) -> None:
        """Release the instance slot, then report each run's event; a failed run is
        logged at ERROR with its traceback and duration."""
        self._release_instance(task_id)
        if not events:
            return
        host = self._host
        for event in events:
            if event.code & _FAILED:
                self._log_error(event, event.duration)
                if event.exception is not None:
                    _clear_own_frames(event.exception)
            if host is not None:
                host.emit(event)

    def _log_error(self, event: TaskExecutionEvent, duration: float | None) -> None:
        """The ERROR line of a failed run: its traceback, its duration when known, and a
        hint when the error has a known cause."""
        run_time = event.scheduled_run_time
        took = f" after {duration:.6f} s" if duration is not None else ""
        hint = self._error_hint(event.exception) if event.exception is not None else None
        verb = (
            "went past its timeout"
            if event.code == TASK_TIMEOUT
            else "was cancelled"
            if event.code == TASK_CANCELLED
            else "raised"
        )
        self.logger.error(
            "task %r (run scheduled at %s) %s%s:\n%s%s",
            event.task_id,
            run_time.isoformat(),
            verb,
            took,
            event.traceback,
            f"\n{hint}" if hint else "",
            extra=run_log_extra(event.task_id, run_time, duration),
        )

    def _error_hint(self, exc: BaseException) -> str | None:
        """A line added to a failed run's log message when the error has a cause this
        executor can name; here, an object of another event loop awaited in an ``async
        def`` task that ran on a loop of its own (executors override the wording)."""
        if not _is_foreign_loop_error(exc):
            return None
        return (
            f"hint: {type(self).__name__} runs an async def task on an event loop of its "
            "own (asyncio.run in a worker), so an object made on another loop (a future, "
            "lock, queue, client session or connection pool of your application) cannot "
            "be used in it. Run such tasks on your application's loop: an AsyncIOScheduler "
            "(or NativeAsyncIOScheduler) started inside that loop, with its default "
            "AsyncIOExecutor."
        )

    def _debug_logger(self) -> logging.Logger | None:
        """The logger when a run's start and end lines would be written (DEBUG is on
        for it), else ``None``; asked once per instance, and the per-run loops do nothing
        more for logging when it is ``None``.

        ``Logger.isEnabledFor`` costs about 2 % of a run in a burst (two Python calls),
        so the answer is read from the logging module's own per-logger cache of it:
        exact (logging empties that cache whenever a level changes anywhere, and the
        miss falls back to ``isEnabledFor``, which fills it) and one dict lookup."""
        try:
            return self.logger if self._level_cache[logging.DEBUG] else None
        except KeyError:
            logger = self.logger
            return logger if logger.isEnabledFor(logging.DEBUG) else None

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
        timeout: float | None = None,
    ) -> None:
        """Run an instance of a plain function in the calling (worker) thread, then
        finish it: the work a thread pool does, with no future callback to hop through.

        Like :func:`run_task`, except that a ``TASK_EXECUTED`` event is built only when a
        listener wants it when the run ends (errors are always logged and built). With
        a ``timeout``, see :meth:`_execute_timed`."""
        if timeout:  # (UNSET, falsy, on a task no scheduler filled in: no limit)
            self._execute_timed(task_id, store, fn, args, kwargs, run_times, timeout)
            return
        events: list[TaskExecutionEvent] = []
        try:
            _call_per_run(
                task_id,
                store,
                fn,
                args,
                kwargs,
                run_times,
                events,
                self._wants,
                self._debug_logger(),
            )
        finally:
            self._run_finished(task_id, events)
            # The failed runs' tracebacks reach this frame (see _clear_own_frames): it
            # must not keep the events once it has returned.
            del events

    def _execute_timed(
        self,
        task_id: str,
        store: str | None,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kwargs: dict[str, Any],
        run_times: Sequence[datetime],
        timeout: float,
    ) -> None:
        """:meth:`_execute` for a task with a ``timeout``, one deadline per run.

        An ``async def`` task (run with ``asyncio.run`` in this thread) is cancelled at
        its deadline. A plain function cannot be stopped: at its deadline the watchdog
        reports the run ``TASK_TIMEOUT`` (see :mod:`tickwork.executors._watchdog`), and
        what the function does when it returns at last is logged and dropped; the
        instance keeps its ``max_instances`` slot until then."""
        events: list[TaskExecutionEvent] = []
        log = self._debug_logger()
        try:
            if is_coroutine_function(fn):
                bounded = functools.partial(_within_call, task_id, timeout, fn)
                _call_per_run(
                    task_id, store, bounded, args, kwargs, run_times, events, self._wants, log
                )
                return
            watchdog = self._watchdog()
            for run_time in run_times:
                ran: list[TaskExecutionEvent] = []
                began = _clock()
                token = watchdog.arm(
                    timeout, functools.partial(self._overdue, task_id, store, run_time, timeout)
                )
                try:
                    _call_per_run(
                        task_id, store, fn, args, kwargs, [run_time], ran, self._wants, log
                    )
                finally:
                    if watchdog.disarm(token):
                        events.extend(ran)
                    else:
                        self.logger.warning(
                            "run of task %r scheduled at %s returned %.3f s after its "
                            "timeout of %g s (reported then); what it returned is dropped",
                            task_id,
                            run_time.isoformat(),
                            _clock() - began - timeout,
                            timeout,
                            extra=run_log_extra(task_id, run_time, _clock() - began),
                        )
        finally:
            self._run_finished(task_id, events)
            del events

    def _watchdog(self) -> Watchdog:
        watchdog = self._deadlines
        if watchdog is None:
            watchdog = self._deadlines = Watchdog(f"tickwork-deadlines-{self.alias}")
        return watchdog

    def _overdue(self, task_id: str, store: str | None, run_time: datetime, timeout: float) -> None:
        """A run in a thread went past its timeout: report it now (it goes on)."""
        event = _error_event(task_id, store, run_time, RunTimeoutError(task_id, timeout), timeout)
        self._log_error(event, timeout)
        self.logger.warning(
            "the thread running task %r cannot be stopped: the run goes on, and keeps its "
            "max_instances slot until it returns",
            task_id,
            extra=run_log_extra(task_id, run_time, timeout),
        )
        if self._host is not None:
            self._host.emit(event)

    def _reset_after_fork(self) -> None:
        """In a forked child: no run of the parent is active here (its threads are gone,
        it reports its own runs), and the lock may have been held by a parent thread."""
        self._instances = {}
        self._instances_lock = threading.Lock()
        self._idle = threading.Condition(self._instances_lock)
        self._idle_waiters = 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} alias={self.alias!r}>"


#: Every executor, for the after-fork hook.
_executors: weakref.WeakSet[BaseExecutor] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for executor in list(_executors):
        executor._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


#: The codes of runs that ended without success: logged at ERROR with their traceback.
_FAILED = TASK_ERROR | TASK_TIMEOUT | TASK_CANCELLED


def _wants_everything(code: int) -> bool:
    return True


def _error_event(
    task_id: str,
    store: str | None,
    run_time: datetime,
    exc: BaseException,
    duration: float | None = None,
) -> TaskExecutionEvent:
    """The event of a run that raised ``exc``: ``TASK_ERROR``, or ``TASK_TIMEOUT`` /
    ``TASK_CANCELLED`` when the executor stopped it (``RunTimeoutError`` /
    ``RunCancelledError``)."""
    text = "".join(tb.format_exception(exc))
    code = (
        TASK_TIMEOUT
        if isinstance(exc, RunTimeoutError)
        else TASK_CANCELLED
        if isinstance(exc, RunCancelledError)
        else TASK_ERROR
    )
    return TaskExecutionEvent(
        code, task_id, store, run_time, exception=exc, traceback=text, duration=duration
    )


def _log_start(log: logging.Logger, task_id: str, run_time: datetime, where: str = "") -> None:
    log.debug(
        "run of task %r scheduled at %s started%s",
        task_id,
        run_time.isoformat(),
        where,
        extra=run_log_extra(task_id, run_time),
    )


def _log_end(log: logging.Logger, task_id: str, run_time: datetime, duration: float) -> None:
    log.debug(
        "run of task %r scheduled at %s finished in %.6f s",
        task_id,
        run_time.isoformat(),
        duration,
        extra=run_log_extra(task_id, run_time, duration),
    )


def _is_foreign_loop_error(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) is asyncio's complaint
    about an object of another event loop."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, RuntimeError):
            message = str(current)
            if any(fragment in message for fragment in _FOREIGN_LOOP_MESSAGES):
                return True
        current = current.__cause__ or current.__context__
    return False


def _clear_own_frames(exc: BaseException) -> None:
    """Drop the local variables of tickwork's executor frames and asyncio's runner frames
    that ``exc``'s traceback reaches and that have exited: they hold the run's events.

    A traceback holds the frames the exception went through, and each of those frames
    its caller (``f_back``). The per-run loop that caught the task's exception, and the
    function that called it, hold the list of events; an event holds the exception,
    whose traceback holds those frames: a reference cycle that kept everything the failed
    run touched (its arguments, the task's local variables) alive until the cycle
    collector ran, however soon the listeners dropped the event. For a coroutine run with
    ``asyncio.run`` in a worker, asyncio's runner frames make another cycle through the
    asyncio task, which holds the exception too.

    The task's own frames are left as they are: ``event.exception.__traceback__`` keeps
    the whole stack, and error reporters that read the task's local variables still find
    them, for as long as the event is kept. Frames still executing cannot be cleared
    (their callers drop their references themselves), and asyncio's generator and
    coroutine frames are never touched: clearing a suspended one would close it."""
    seen: set[int] = set()
    trace = exc.__traceback__
    while trace is not None:
        frame: FrameType | None = trace.tb_frame
        while frame is not None and id(frame) not in seen:
            seen.add(id(frame))
            module = frame.f_globals.get("__name__", "")
            if module.startswith("tickwork.executors.") or (
                module.startswith("asyncio.") and not frame.f_code.co_flags & _SUSPENDABLE
            ):
                with contextlib.suppress(RuntimeError):  # still executing: left alone
                    frame.clear()
            frame = frame.f_back
        trace = trace.tb_next


def _report_interrupted(
    task_id: str,
    store: str | None,
    run_times: Sequence[datetime],
    exc: BaseException,
    began: float | None,
    events: list[TaskExecutionEvent],
) -> None:
    """Report the runs a ``BaseException`` stopped: the one it interrupted (how long it
    had run) and those that never started (no duration)."""
    for index, run_time in enumerate(run_times):
        took = _clock() - began if index == 0 and began is not None else None
        events.append(_error_event(task_id, store, run_time, exc, took))


def _within_call(
    task_id: str, timeout: float, fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """``fn(*args, **kwargs)`` for ``asyncio.run``, bounded by ``timeout``."""
    return _within(task_id, timeout, fn(*args, **kwargs))


async def _within(task_id: str, timeout: float, awaitable: Any) -> Any:
    """Await ``awaitable``, cancelled past ``timeout`` seconds with a
    :class:`RunTimeoutError` (a ``TimeoutError`` the task raises itself stays its own)."""
    limit = asyncio.timeout(timeout)
    try:
        async with limit:
            return await awaitable
    except TimeoutError:
        if limit.expired():
            raise RunTimeoutError(task_id, timeout) from None
        raise


def run_task(
    task_id: str,
    store: str | None,
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    run_times: Sequence[datetime],
    logger: logging.Logger | None = None,
) -> list[TaskExecutionEvent]:
    """Call a plain function once per run time and return one event per run (each with
    its ``duration``).

    Coroutine functions are run to completion with :func:`asyncio.run`, so a thread or
    process executor can run ``async def`` tasks too. Given a ``logger`` with DEBUG on,
    each run's start and end are logged on it.
    """
    events: list[TaskExecutionEvent] = []
    log = logger if logger is not None and logger.isEnabledFor(logging.DEBUG) else None
    _call_per_run(task_id, store, fn, args, kwargs, run_times, events, None, log)
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
    log: logging.Logger | None = None,
) -> None:
    """Call ``fn`` once per run time, appending one event per run to ``events``: an error
    event for an exception, and ``TASK_EXECUTED`` unless ``wants`` says no listener wants
    it. A ``BaseException`` from the task (SystemExit & co.) is reported for the runs not
    done yet, then propagates.

    Each event carries how long its run took; ``log`` (the executor's logger when DEBUG
    is on for it, else ``None``) gets a start and an end line per successful run (a
    failed run's end is its ERROR line, written by ``_run_finished``)."""
    done = 0
    began: float | None = None
    try:
        for run_time in run_times:
            if log is not None:
                _log_start(log, task_id, run_time)
            began = _clock()
            try:
                result = fn(*args, **kwargs)
                if asyncio.iscoroutine(result):
                    result = asyncio.run(result)
            except Exception as exc:  # the task's failure is reported, never propagated
                events.append(_error_event(task_id, store, run_time, exc, _clock() - began))
            else:
                if log is not None:
                    _log_end(log, task_id, run_time, _clock() - began)
                if wants is None or wants(TASK_EXECUTED):
                    events.append(
                        TaskExecutionEvent(
                            TASK_EXECUTED,
                            task_id,
                            store,
                            run_time,
                            return_value=result,
                            duration=_clock() - began,
                        )
                    )
            done += 1
    except BaseException as exc:
        _report_interrupted(task_id, store, run_times[done:], exc, began, events)
        raise


async def run_coroutine_task(
    task_id: str,
    store: str | None,
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    run_times: Sequence[datetime],
    logger: logging.Logger | None = None,
) -> list[TaskExecutionEvent]:
    """Await an ``async def`` task once per run time and return one event per run (each
    with its duration); ``logger`` as for :func:`run_task`."""
    events: list[TaskExecutionEvent] = []
    log = logger if logger is not None and logger.isEnabledFor(logging.DEBUG) else None
    await await_per_run(task_id, store, fn, args, kwargs, run_times, events, None, log)
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
    log: logging.Logger | None = None,
    timeout: float | None = None,
) -> None:
    """:func:`_call_per_run` for ``async def`` tasks: await ``fn`` once per run time,
    appending one event per run (with its duration; start and end lines on ``log``, as
    there). Cancelled (or a ``BaseException`` from the task), the
    runs not done yet are reported failed, then it propagates; a cancellation's event
    carries a fresh ``CancelledError`` (the one raised holds this frame) with the
    canceller's message, so ``run.cancel("why")`` says why. With a ``timeout``, each run
    is cancelled when it goes past it and reported ``TASK_TIMEOUT``."""
    done = 0
    began: float | None = None
    try:
        for run_time in run_times:
            if log is not None:
                _log_start(log, task_id, run_time)
            began = _clock()
            try:
                if not timeout:  # (None, or UNSET on a task no scheduler filled in)
                    result = await fn(*args, **kwargs)
                else:
                    result = await _within(task_id, timeout, fn(*args, **kwargs))
            except Exception as exc:  # the task's failure is reported, never propagated
                events.append(_error_event(task_id, store, run_time, exc, _clock() - began))
            else:
                if log is not None:
                    _log_end(log, task_id, run_time, _clock() - began)
                if wants is None or wants(TASK_EXECUTED):
                    events.append(
                        TaskExecutionEvent(
                            TASK_EXECUTED,
                            task_id,
                            store,
                            run_time,
                            return_value=result,
                            duration=_clock() - began,
                        )
                    )
            done += 1
    except BaseException as exc:
        _report_interrupted(task_id, store, run_times[done:], _as_reported(exc), began, events)
        raise


def _as_reported(exc: BaseException) -> BaseException:
    """What the event of a coroutine run stopped by ``exc`` carries: ``exc`` itself, but
    for a cancellation a fresh ``CancelledError`` (the one raised holds the awaiting
    frame) with the canceller's message, so ``run.cancel("why")`` says why."""
    if isinstance(exc, asyncio.CancelledError):
        return asyncio.CancelledError(str(exc) or "run cancelled")
    return exc
