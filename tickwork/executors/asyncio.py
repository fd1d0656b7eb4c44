"""Runs tasks on the scheduler's event loop: coroutines as asyncio tasks, plain functions
in a thread pool so they never block the loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from logging import DEBUG
from typing import Any, Protocol, runtime_checkable

from tickwork._task_fields import is_coroutine_function
from tickwork.events import TASK_EXECUTED, TaskExecutionEvent
from tickwork.exceptions import ConfigurationError, MaxInstancesReachedError, RunCancelledError
from tickwork.executors._workers import ThreadWorkers
from tickwork.executors.base import (
    BaseExecutor,
    ExecutorHost,
    _as_reported,
    _clock,
    _error_event,
    _is_foreign_loop_error,
    _report_interrupted,
    await_per_run,
)
from tickwork.tasks import Task

__all__ = ["AsyncIOExecutor", "LoopHost"]


@runtime_checkable
class LoopHost(ExecutorHost, Protocol):
    """An :class:`ExecutorHost` on an event loop: the asyncio schedulers. The loop's
    thread is read on every run: a loop given before it runs learns its thread late."""

    @property
    def event_loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop coroutine runs go to."""
        ...

    @property
    def event_loop_thread_id(self) -> int | None:
        """The thread that loop runs in (None until it runs)."""
        ...


#: How often (seconds) a thread waiting in ``shutdown`` checks that the loop still runs.
_LOOP_CHECK_INTERVAL = 0.1

#: A run not started yet: its key, task id, store alias and run times.
_Unstarted = tuple[int, str, str | None, list[datetime]]

#: Whether a task's callable is a coroutine function, by callable: send_task asks once
#: per run, and a dict look-up costs a fraction of the call to is_coroutine_function.
#: Emptied when full, so callables made on the fly do not pile up (is_coroutine_function's
#: own cache holds its callables the same way).
_COROUTINE_FNS: dict[Any, bool] = {}
_COROUTINE_FNS_MAX = 1024


def _remember_kind(fn: Any) -> bool:
    coroutine_fn = is_coroutine_function(fn)
    try:
        if len(_COROUTINE_FNS) >= _COROUTINE_FNS_MAX:
            _COROUTINE_FNS.clear()
        _COROUTINE_FNS[fn] = coroutine_fn
    except TypeError:  # unhashable: asked again next time
        pass
    return coroutine_fn


class AsyncIOExecutor(BaseExecutor):
    """Run ``async def`` tasks as asyncio tasks on the scheduler's loop and plain functions
    in a private thread pool of ``max_workers`` threads (the loop never runs them itself).

    ``shutdown(wait=True)`` waits for active runs and never cancels them.
    """

    #: The watch_workers callback (None: not watched).
    _on_free: Callable[[], None] | None = None

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        self.max_workers = max_workers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_host: LoopHost | None = None
        self._threads: ThreadWorkers | None = None
        #: The asyncio tasks of active coroutine runs, by a key each run removes itself
        #: with when it ends: a strong reference (the loop keeps weak ones only).
        self._pending: dict[int, asyncio.Future[None]] = {}
        #: Runs whose coroutine has not started yet (see _launch), with what their
        #: done callback ``_guard`` (one bound method: removable by equality) needs.
        self._unstarted: dict[asyncio.Future[None], _Unstarted] = {}
        self._guard: Callable[[asyncio.Future[None]], None] = self._ended_unstarted
        self._keys = itertools.count()
        #: Runs cancelled by cancel_run, by key, with the reason: their events say so.
        self._cancelled: dict[int, str] = {}
        #: The loop's thread once known (see _learn_loop_thread).
        self._loop_thread: int | None = None

    def start(self, host: ExecutorHost, alias: str) -> None:
        """Bind to the scheduler's event loop."""
        if not isinstance(host, LoopHost) or host.event_loop is None:
            raise ConfigurationError(
                f"executor {alias!r}: AsyncIOExecutor needs an asyncio scheduler "
                f"(got {getattr(host, 'scheduler_name', type(host).__name__)}); "
                "use ThreadPoolExecutor instead"
            )
        loop = host.event_loop
        super().start(host, alias)
        self._loop_host = host
        self._loop = loop
        self._loop_thread = None
        self._threads = ThreadWorkers(self.max_workers, thread_name_prefix=f"tickwork-{alias}")
        self._threads.on_free = self._on_free

    def _on_loop_thread(self) -> bool:
        # Read from the scheduler each time: a loop given before it runs gets its thread
        # only once it starts.
        host = self._loop_host
        return host is not None and threading.get_ident() == host.event_loop_thread_id

    def send_task(self, task: Task, run_times: Sequence[datetime]) -> None:
        """Start one instance of ``task`` (see :meth:`BaseExecutor.send_task`).

        A coroutine sent from the loop's own thread, the bulk of a burst and every run of
        a spread load, takes a shorter path than the general one: the same checks and
        the same asyncio task as :meth:`_launch`, without its calls (each Python call
        costs about as much as a few lines on 3.11, and this runs once per run)."""
        profile = task._profile  # (its fields directly: a task's properties cost a frame)
        fn = profile.fn
        thread = self._loop_thread
        if thread is None:
            thread = self._learn_loop_thread()
        try:
            coroutine_fn = _COROUTINE_FNS[fn]
        except (KeyError, TypeError):  # not asked yet, or an unhashable callable
            coroutine_fn = _remember_kind(fn)
        loop = self._loop
        if (
            not coroutine_fn
            or loop is None
            or threading.get_ident() != thread
            or loop.get_task_factory() is not None
        ):
            super().send_task(task, run_times)
            return
        task_id = task.id
        with self._instances_lock:
            if self._shut_down:
                raise self._shut_down_error()
            active = self._instances.get(task_id, 0)
            if active >= profile.max_instances:
                raise MaxInstancesReachedError(task_id, profile.max_instances)
            self._instances[task_id] = active + 1
        # _launch, inline (no task factory: asyncio.Task directly, not started yet).
        store, times, key = task.store_alias, list(run_times), next(self._keys)
        coroutine = self._run_coroutine(
            key, task_id, store, fn, task.args, task.kwargs, times, profile.policy.timeout
        )
        try:
            run: asyncio.Future[None] = asyncio.Task(coroutine, loop=loop)
        except BaseException:
            coroutine.close()  # never started: no "never awaited" warning
            self._release_instance(task_id)
            raise
        self._pending[key] = run
        self._unstarted[run] = (key, task_id, store, times)
        run.add_done_callback(self._guard)

    def _learn_loop_thread(self) -> int | None:
        """The loop's thread, kept once known (a loop given before it runs has none yet;
        :meth:`start` forgets it, as a restarted scheduler may run on another loop)."""
        host = self._loop_host
        thread = None if host is None else host.event_loop_thread_id
        self._loop_thread = thread
        return thread

    def do_send_task(self, task: Task, run_times: list[datetime]) -> None:
        """Start the instance: a coroutine on the loop (thread-safely when called from
        elsewhere), a plain function straight in the thread pool."""
        assert self._loop is not None, "executor not started"
        assert self._threads is not None, "executor not started"
        profile = task._profile
        fn, timeout = profile.fn, profile.policy.timeout
        if not is_coroutine_function(fn):
            # Submitted and finished in the worker thread without touching the loop: a
            # burst of thousands of sync runs then costs the loop nothing.
            self._threads.submit(
                self._execute,
                task.id,
                task.store_alias,
                fn,
                task.args,
                task.kwargs,
                run_times,
                timeout,
            )
            return
        job = (task.id, task.store_alias, fn, task.args, task.kwargs, run_times, timeout)
        if self._on_loop_thread():
            self._launch(*job)
        else:
            self._loop.call_soon_threadsafe(self._launch_sent, *job)

    def _launch_sent(
        self,
        task_id: str,
        store: str | None,
        fn: Any,
        args: Any,
        kwargs: Any,
        run_times: list[datetime],
        timeout: float | None = None,
    ) -> None:
        """:meth:`_launch`, called on the loop for a run sent from another thread: its
        ``send_task`` has returned, so a failure to start (a task factory raising) is
        reported as the run's outcome here, and releases its slot."""
        try:
            self._launch(task_id, store, fn, args, kwargs, run_times, timeout)
        except BaseException as exc:
            self._run_crashed(task_id, store, run_times, exc)
            if not isinstance(exc, Exception):
                raise

    def _launch(
        self,
        task_id: str,
        store: str | None,
        fn: Any,
        args: Any,
        kwargs: Any,
        run_times: list[datetime],
        timeout: float | None = None,
    ) -> None:
        loop = self._loop
        if loop is None:
            raise ConfigurationError(f"executor {self.alias!r} is not started")
        key = next(self._keys)
        coroutine = self._run_coroutine(key, task_id, store, fn, args, kwargs, run_times, timeout)
        factory = loop.get_task_factory()
        try:
            # asyncio.Task directly unless the loop has a task factory: the same task,
            # without create_task's Python-level wrapper (a few % of a burst).
            if factory is None:
                run: asyncio.Future[None] = asyncio.Task(coroutine, loop=loop)
            else:
                run = loop.create_task(coroutine)
        except BaseException:
            coroutine.close()  # never started: no "never awaited" warning
            raise
        if factory is not None and coroutine.cr_frame is None:  # type: ignore[attr-defined]
            return  # an eager task factory ran it to the end already
        self._pending[key] = run
        if factory is None or not coroutine.cr_suspended:  # type: ignore[attr-defined]
            # Not started yet (always, but with an eager task factory). Cancelled before
            # its first step, the coroutine would end without running any of its code,
            # finally clause included: this callback then finishes the run. The coroutine
            # removes it when it starts, so a run that starts costs no extra callback.
            self._unstarted[run] = (key, task_id, store, run_times)
            run.add_done_callback(self._guard)

    def _ended_unstarted(self, run: asyncio.Future[None]) -> None:
        """Finish a run whose asyncio task ended before its coroutine started (it was
        cancelled): report every run time as failed and release the slot."""
        key, task_id, store, run_times = self._unstarted.pop(run)
        self._pending.pop(key, None)
        exc = None if run.cancelled() else run.exception()
        reason = self._cancelled.pop(key, None)
        if reason is not None:
            exc = RunCancelledError(reason)
        elif exc is None:
            exc = asyncio.CancelledError("run cancelled before it started")
        self._run_crashed(task_id, store, run_times, exc)

    async def _run_coroutine(
        self,
        key: int,
        task_id: str,
        store: str | None,
        fn: Any,
        args: Any,
        kwargs: Any,
        run_times: list[datetime],
        timeout: float | None = None,
    ) -> None:
        """Await the instance's runs, then finish it, all inside its asyncio task: no done
        callback (one loop round-trip less per run) and, unless a listener wants
        ``TASK_EXECUTED``, no event object either. The task body sees its own
        ``asyncio.current_task()``, so ``asyncio.timeout()`` & co. work in it."""
        events: list[TaskExecutionEvent] = []
        try:
            # Started: from now on this frame's ``finally`` finishes the run, so the done
            # callback set by _launch goes. (None while an eager task factory starts it.)
            run = self._pending.get(key)
            if run is not None and self._unstarted.pop(run, None) is not None:
                run.remove_done_callback(self._guard)
            # _debug_logger() inline (this is the burst's path): one dict lookup.
            try:
                log = self.logger if self._level_cache[DEBUG] else None
            except KeyError:
                log = self._debug_logger()
            if log is not None or timeout or len(run_times) != 1:
                await await_per_run(
                    task_id, store, fn, args, kwargs, run_times, events, self._wants, log, timeout
                )
                return
            # await_per_run for the common case, one run without timeout or DEBUG log,
            # inline: a coroutine object, a frame and ten arguments less per run (with
            # send_task's shorter path, about 5,000 of a spread wake-up's ~167,000
            # instructions: bench/instructions.py). The same events (see there; the
            # tests compare the two paths).
            began = _clock()
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:  # the task's failure is reported, never propagated
                events.append(_error_event(task_id, store, run_times[0], exc, _clock() - began))
            except BaseException as exc:
                _report_interrupted(task_id, store, run_times, _as_reported(exc), began, events)
                raise
            else:
                if self._wants(TASK_EXECUTED):
                    events.append(
                        TaskExecutionEvent(
                            TASK_EXECUTED,
                            task_id,
                            store,
                            run_times[0],
                            return_value=result,
                            duration=_clock() - began,
                        )
                    )
        finally:
            self._pending.pop(key, None)
            if self._cancelled:
                self._as_cancelled(key, events)
            if events:
                self._run_finished(task_id, events)
            else:
                # _release_instance, inline: every run nobody listens to ends here.
                with self._instances_lock:
                    active = self._instances.get(task_id, 0) - 1
                    if active > 0:
                        self._instances[task_id] = active
                    else:
                        self._instances.pop(task_id, None)
                        if not self._instances and self._idle_waiters:
                            self._idle.notify_all()
            # The failed runs' tracebacks reach this frame (see _clear_own_frames): it
            # must not keep the events once it has returned.
            del events

    def cancel_run(self, task_id: str, run_time: datetime | None, reason: str) -> int:
        """Cancel the coroutine runs of ``task_id`` (the instance holding ``run_time``,
        when given; see :meth:`BaseExecutor.cancel_run`). Runs in the thread pool cannot
        be stopped and are not counted. Call it on the loop's thread, or from another
        thread: then it waits for the loop to do it."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return 0
        if self._on_loop_thread():
            return self._cancel_on_loop(task_id, run_time, reason)
        future = asyncio.run_coroutine_threadsafe(
            _call(self._cancel_on_loop, task_id, run_time, reason), loop
        )
        return future.result(CANCEL_TIMEOUT)

    def _cancel_on_loop(self, task_id: str, run_time: datetime | None, reason: str) -> int:
        cancelled = 0
        wanted = None if run_time is None else run_time.timestamp()
        for key, run in list(self._pending.items()):
            # What a run is running is read from its coroutine's arguments (a frame's
            # locals) rather than kept per run: cancelling is rare, and a burst of
            # thousands of runs pays nothing for it this way.
            coroutine = run.get_coro() if isinstance(run, asyncio.Task) else None
            frame = getattr(coroutine, "cr_frame", None)
            if frame is None or run.done():
                continue
            local = frame.f_locals
            if local.get("task_id") != task_id:
                continue
            if wanted is not None and all(
                when.timestamp() != wanted for when in local.get("run_times", ())
            ):
                continue
            self._cancelled[key] = reason
            run.cancel(reason)
            cancelled += 1
        return cancelled

    def _as_cancelled(self, key: int, events: list[TaskExecutionEvent]) -> None:
        """Turn the cancellation events of a run :meth:`cancel_run` cancelled into
        ``TASK_CANCELLED`` ones carrying its reason."""
        reason = self._cancelled.pop(key, None)
        if reason is None:
            return
        for index, event in enumerate(events):
            if isinstance(event.exception, asyncio.CancelledError):
                events[index] = _error_event(
                    event.task_id,
                    event.store,
                    event.scheduled_run_time,
                    RunCancelledError(reason),
                    event.duration,
                )

    def cancel_active(self, reason: str) -> None:
        """Cancel the active coroutine runs (see :meth:`BaseExecutor.cancel_active`);
        runs in the thread pool cannot be stopped and go on."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def cancel() -> None:
            for run in list(self._pending.values()):
                run.cancel(reason)

        if self._on_loop_thread():
            cancel()
        else:
            loop.call_soon_threadsafe(cancel)

    def free_workers(self, task: Task) -> int | None:
        """``None`` for a coroutine (the loop takes any number of them); for a plain
        function, how many more would start at once in the thread pool (see
        :class:`~tickwork.executors.base.WorkerCapacity`)."""
        threads = self._threads
        if threads is None or is_coroutine_function(task._profile.fn):
            return None
        return threads.free()

    def watch_workers(self, callback: Callable[[], None] | None) -> None:
        """See :class:`~tickwork.executors.base.WorkerCapacity`: the thread pool's
        workers call ``callback`` as they free."""
        self._on_free = callback
        if self._threads is not None:
            self._threads.on_free = callback

    def _error_hint(self, exc: BaseException) -> str | None:
        """Name the usual cause of an object of another loop awaited by a coroutine run:
        the scheduler runs on a loop other than the application's."""
        if not _is_foreign_loop_error(exc):
            return None
        return (
            "hint: AsyncIOExecutor runs coroutines on its scheduler's event loop, and this "
            "task used an object made on another loop. Start the AsyncIOScheduler from "
            "inside the loop your application runs (called from sync code, start() runs a "
            "loop of its own in a thread; event_loop= and isolated_event_loop=True choose "
            "another loop too), or use NativeAsyncIOScheduler (await scheduler.start())."
        )

    def runs_caller(self) -> bool:
        """True when called from one of this executor's coroutine runs or from one of its
        threads (see :meth:`BaseExecutor.runs_caller`)."""
        if self._threads is not None and self._threads.owns_current_thread():
            return True
        if not self._on_loop_thread():
            return False
        current = asyncio.current_task()
        return current is not None and any(run is current for run in self._pending.values())

    async def shutdown_async(self, wait: bool = True) -> None:
        """Refuse new runs; with ``wait``, wait (without blocking the loop) until every
        accepted run is done: running ones, and those sent from other threads that have
        not started yet. Never cancel them."""
        self._stop_accepting()
        if wait:
            await self.wait_until_idle_async()
        if self._threads is not None:
            await asyncio.to_thread(self._threads.shutdown, wait)

    def shutdown(self, wait: bool = True) -> None:
        """Stop. From another thread, ``wait`` blocks until active runs are done; on the
        loop's own thread it cannot block, so active runs simply go on to completion."""
        self._stop_accepting()
        loop = self._loop
        if (
            wait
            and loop is not None
            and loop.is_running()
            and not self._on_loop_thread()
            and self._wait_on_loop(loop)
        ):
            return
        if self._threads is not None:
            # On the loop thread: threads may be joined, coroutines can't be awaited here.
            # (With the loop stopped, its coroutine runs cannot go on; the threads still
            # stop.)
            self._threads.shutdown(wait=wait)

    def _wait_on_loop(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Run :meth:`shutdown_async` on ``loop`` from another thread and wait for it.
        Return False if the loop stopped before it finished: the loop may stop at any
        moment (even before the coroutine got to start), and waiting for a stopped loop
        would block forever."""
        future = asyncio.run_coroutine_threadsafe(self.shutdown_async(True), loop)
        while True:
            try:
                future.result(timeout=_LOOP_CHECK_INTERVAL)
            except concurrent.futures.TimeoutError:
                if not loop.is_running():
                    future.cancel()
                    return False
            else:
                return True


#: How long a cancel_run from another thread waits for the loop.
CANCEL_TIMEOUT = 10.0


async def _call(fn: Callable[..., int], *args: Any) -> int:
    return fn(*args)
