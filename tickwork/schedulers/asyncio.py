"""Schedulers that live on an asyncio event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import warnings
from collections.abc import Coroutine, Generator
from types import TracebackType
from typing import Any

from tickwork.exceptions import ConfigurationError, SchedulerAlreadyRunningError
from tickwork.executors.asyncio import AsyncIOExecutor
from tickwork.executors.base import BaseExecutor, ExecutorHost
from tickwork.schedulers.base import BaseScheduler, SchedulerState

__all__ = ["AsyncIOScheduler", "NativeAsyncIOScheduler"]


class AsyncIOScheduler(BaseScheduler):
    """A scheduler on an asyncio event loop, controlled with plain (sync) calls.

    ``start()`` called inside a running loop attaches to that loop; called from sync
    code it runs a loop of its own in a daemon thread (as does ``isolated_event_loop=True``).
    ``event_loop=`` attaches to a given loop that may start running later.

    The event loop is never blocked by the scheduler: passes over the memory store are
    cut into batches with a yield between them, and stores that do I/O are processed in a
    worker thread. ``shutdown()`` from another thread waits for the scheduler to stop;
    inside the loop it cannot block, so running tasks are left to finish (never
    cancelled) — use ``await scheduler.shutdown_async()`` or ``async with`` to wait.
    """

    #: Seconds before a planned wake-up at which a pass runs to warm the CPU's caches
    #: (see :meth:`_on_warm_up`); 0 turns it off. Only sleeps longer than twice this get
    #: one, so a busy scheduler pays for no extra passes.
    warm_up_lead: float = 0.0015

    def __init__(
        self,
        *,
        event_loop: asyncio.AbstractEventLoop | None = None,
        isolated_event_loop: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._given_loop = event_loop
        self.isolated_event_loop = isolated_event_loop
        self.event_loop: asyncio.AbstractEventLoop | None = None
        self.event_loop_thread_id: int | None = None
        self._own_loop_thread: threading.Thread | None = None
        self._driver: concurrent.futures.Future[None] | asyncio.Task[None] | None = None
        self._wake_future: asyncio.Future[None] | None = None
        #: The timers of the driver's sleep: its wake-up and the warm-up pass before it.
        self._timer: asyncio.TimerHandle | None = None
        self._warm_up: asyncio.TimerHandle | None = None
        #: A shutdown asked for by one of the scheduler's own runs, going on in the loop.
        self._closing: asyncio.Task[None] | None = None
        self._wake_requested = False

    def _create_default_executor(self) -> BaseExecutor:
        return AsyncIOExecutor()

    def _executor_host(self) -> ExecutorHost:
        return _LoopHost(self)

    # -- starting -----------------------------------------------------------------------------

    def start(self, paused: bool = False) -> None:
        """Start processing (see the class docstring for which loop is used)."""
        self._check_can_start()
        loop = self._given_loop
        if loop is None and not self.isolated_event_loop:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        if loop is None:
            loop = self._start_own_loop()
        elif not loop.is_running():
            self._warn_if_elsewhere(loop)
        elif loop.is_running() and _loop_is_current(loop):
            self.event_loop_thread_id = threading.get_ident()
        self._attach(loop, paused)
        if _loop_is_current(loop):
            self._driver = loop.create_task(self._drive(), name="tickwork-scheduler")
        else:
            self._driver = asyncio.run_coroutine_threadsafe(self._drive(), loop)

    def _check_can_start(self) -> None:
        """start()'s checks, naming the usual mistakes with event loops: a scheduler
        whose loop ended without shutting it down, a given loop that is closed."""
        previous = self.event_loop
        if self.running and previous is not None and previous.is_closed():
            raise SchedulerAlreadyRunningError(
                f"{type(self).__name__} is still running on an event loop that has closed "
                "(the asyncio.run() or test that started it ended without shutting it "
                "down): call scheduler.shutdown() first, and shut it down before its loop "
                "ends ('async with scheduler:' or 'await scheduler.shutdown_async()')"
            )
        self._check_not_running()
        given = self._given_loop
        if given is not None and given.is_closed():
            raise ConfigurationError(
                f"the event loop given to {type(self).__name__}(event_loop=...) is closed; "
                "give a loop that will run, or none to use the loop start() is called from"
            )

    def _warn_if_elsewhere(self, loop: asyncio.AbstractEventLoop) -> None:
        """Warn when start() is called from a running loop while the scheduler's own
        (given) loop does not run: nothing runs until that one does, which is rarely
        what was meant."""
        try:
            calling = asyncio.get_running_loop()
        except RuntimeError:
            return
        if calling is not loop:
            self.logger.warning(
                "%s.start() was called from a running event loop, but the scheduler is "
                "attached to another loop (event_loop=...) that is not running: no task "
                "runs until that loop runs. Leave event_loop out to use the running loop.",
                type(self).__name__,
            )

    def _attach(self, loop: asyncio.AbstractEventLoop, paused: bool) -> None:
        self.event_loop = loop
        self._wake_requested = False
        try:
            self._start_core(paused)
        except BaseException:
            self._detach()
            raise

    def _start_own_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            self.event_loop_thread_id = threading.get_ident()
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._own_loop_thread = threading.Thread(target=run, name="tickwork-loop", daemon=True)
        self._own_loop_thread.start()
        ready.wait()
        return loop

    # -- the driver: pass, sleep, repeat ----------------------------------------------------------

    async def _drive(self) -> None:
        self.event_loop_thread_id = threading.get_ident()
        loop = asyncio.get_running_loop()
        while self.running:
            try:
                delay = await self._run_pass_async(loop)
            except Exception:  # a bug in a pass must not kill the scheduler silently
                self.logger.exception("scheduler pass failed; retrying in 1 s")
                delay = 1.0
            if not self.running:
                break
            await self._sleep(loop, delay)

    async def _run_pass_async(self, loop: asyncio.AbstractEventLoop) -> float | None:
        if self.state != SchedulerState.RUNNING:
            return None
        now = self.clock.now()
        for _ in self._pass.steps(now):
            await asyncio.sleep(0)  # let the loop (and the runs just started) breathe
        return self._pass.plan(now)

    async def _sleep(self, loop: asyncio.AbstractEventLoop, delay: float | None) -> None:
        if self._wake_requested:
            self._wake_requested = False
            return
        future: asyncio.Future[None] = loop.create_future()
        self._wake_future = future
        self._arm(loop, future, delay)
        try:
            await future
        finally:
            self._disarm()
            self._wake_future = None
            self._wake_requested = False

    def _arm(
        self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], delay: float | None
    ) -> None:
        """Set the timers of the sleep that ``future`` ends: the wake-up in ``delay``
        seconds (none: until woken) and its warm-up pass."""
        if self._timer is not None or self._warm_up is not None:
            self._disarm()
        if delay is None:
            return
        # call_at, not call_later: call_later is a Python wrapper around it (a frame
        # less at every wake-up of a spread load).
        when = loop.time() + delay
        self._timer = loop.call_at(when, self._on_timer, future)
        lead = self.warm_up_lead
        if lead > 0 and delay > 2 * lead:
            self._warm_up = loop.call_at(when - lead, self._on_warm_up, future)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._warm_up is not None:
            self._warm_up.cancel()
            self._warm_up = None

    def _on_warm_up(self, future: asyncio.Future[None]) -> None:
        """A pass shortly before the planned wake-up, for the one that follows. After tens
        of milliseconds asleep every line of a pass runs cold: measured on a 2-core
        machine, the first ``datetime.now()`` after 50 ms of sleep cost about 20 times the
        second, and the timer's pass for one due task 0.2-0.3 ms instead of 0.05-0.15.
        The wake-up's pass then finds its code and data still in the caches. Nothing is
        due yet (it is a pass like any other: what is due runs, nothing earlier), so the
        planned wake-up stands; if something ran after all (the wall clock jumped), or
        the pass failed, the driver is woken to plan again."""
        planned = self._planned_wakeup
        if self._pass_in_callback(future):  # something ran, or the pass failed
            _resolve(future)
        elif self._planned_wakeup is None:
            self._planned_wakeup = planned

    def _on_timer(self, future: asyncio.Future[None]) -> None:
        """The planned wake-up: something is due. The due runs start here, in the
        timer's own callback: waking the driver first would start them one loop
        iteration later (about 0.15 ms of lateness on a 2-core machine, half of what a
        scheduler adds to the loop's own). When that batch was the whole pass (stores in
        this process only, none with a full batch) the next wake-up is planned here too
        and the driver sleeps on (see :meth:`PassRunner.inline_pass`); otherwise the
        driver is woken for the rest (further batches, stores doing I/O)."""
        self._timer = None  # (it has fired: nothing to cancel)
        if future.done():
            return
        # (``_life.state``: the ``state`` property is a Python call, at every wake-up)
        if self._life.state == SchedulerState.RUNNING:
            try:
                finished, delay = self._pass.inline_pass(self.clock.now())
            except Exception:  # a bug in a pass must not kill the loop's callback silently
                self.logger.exception("scheduler pass failed")
                finished = False
            if finished and not future.done():
                loop = self.event_loop
                if loop is not None:
                    self._arm(loop, future, delay)
                    return
        _resolve(future)

    def _pass_in_callback(self, future: asyncio.Future[None]) -> bool:
        """One batch from each in-process store, from a timer callback of the sleep that
        ``future`` ends. True when the driver must plan again: tasks were handled, or
        the pass failed (logged; the driver's own pass follows)."""
        if self.state != SchedulerState.RUNNING or future.done():
            return False
        try:
            handled = self._pass.inline_batches(self.clock.now())
        except Exception:  # a bug in a pass must not kill the loop's callback silently
            self.logger.exception("scheduler pass failed")
            return True
        return handled > 0

    def _on_wake(self) -> None:
        self._wake_requested = True
        if self._wake_future is not None:
            _resolve(self._wake_future)

    def wakeup(self) -> None:
        """Run a pass now. Thread-safe."""
        loop = self.event_loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self.event_loop_thread_id:
            self._on_wake()
        else:
            loop.call_soon_threadsafe(self._on_wake)

    def _refuse_on_own_loop(self, method: str, instead: str) -> None:
        """A blocking wait on the loop's own thread would wait for itself."""
        if threading.get_ident() == self.event_loop_thread_id:
            raise RuntimeError(
                f"{method}() blocks until the run ends, and the run needs this event "
                f"loop: write {instead} in a coroutine"
            )

    # -- stopping -----------------------------------------------------------------------------------

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop: run shutdown-trigger tasks, stop executors (letting runs finish when
        ``wait``, for at most ``timeout`` seconds: see :meth:`shutdown_async`), shut
        stores down. See the class docstring about calling it on the loop."""
        timeout = self._shutdown_timeout(timeout)
        loop = self.event_loop
        on_loop_thread = threading.get_ident() == self.event_loop_thread_id
        if loop is not None and loop.is_running() and not on_loop_thread:
            if wait and self._called_from_own_run():
                # A sync task in one of our threads: blocking here would wait for this
                # very run. The shutdown goes on in the loop and ends after it returns.
                closing = asyncio.run_coroutine_threadsafe(self.shutdown_async(wait, timeout), loop)
                closing.add_done_callback(self._after_background_shutdown)
                return
            try:
                asyncio.run_coroutine_threadsafe(self.shutdown_async(wait, timeout), loop).result()
            finally:
                self._detach()
        else:
            # On the loop's own thread nothing can be awaited: running coroutines are left
            # to finish (never cancelled) and shutdown tasks start at once.
            self._stop_processing()
            self._on_wake()
            self._wait_for_pass()  # (store batches on their threads: bounded by their I/O)
            self._run_shutdown_tasks()
            errors = self._stop_executors(wait)
            self._finish_shutdown()
            self._detach()
            if errors:
                raise errors[0]

    async def shutdown_async(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop, awaiting on the loop: with ``wait``, running tasks finish first, then the
        shutdown-trigger tasks run, then the executors stop; nothing is cancelled, unless
        ``timeout`` (default: the scheduler's ``shutdown_timeout``) passes first: then
        coroutine runs are cancelled (``TASK_ERROR`` with a ``CancelledError`` saying
        so) and runs in threads are reported and left to finish on their own. The
        shutdown-trigger tasks get the same bound.

        Awaited inside one of this scheduler's own runs, it stops dispatching and returns:
        waiting for every run would wait for the caller. The rest of the shutdown goes on
        in a task of its own and ends once that run (and the others) have finished."""
        timeout = self._shutdown_timeout(timeout)
        self._stop_processing()
        self._on_wake()
        if wait and self._called_from_own_run():
            closing = asyncio.get_running_loop().create_task(
                self._complete_shutdown(wait, timeout), name="tickwork-shutdown"
            )
            self._closing = closing
            closing.add_done_callback(self._after_background_shutdown)
            return
        await self._complete_shutdown(wait, timeout)

    async def _complete_shutdown(self, wait: bool, timeout: float | None) -> None:
        driver = self._driver
        # The pass in progress ends first (a driver on the scheduler's own loop was
        # started from another thread: its concurrent future is awaited here too), so
        # no batch hands runs to executors that are stopping, and the loop stops with
        # no task of ours pending.
        if isinstance(driver, asyncio.Task):
            if driver is not asyncio.current_task():
                await asyncio.wait([driver])
        elif driver is not None:
            await asyncio.wait([asyncio.wrap_future(driver)])
        await asyncio.to_thread(self._wait_for_pass)
        idle = await self._wait_for_runs_async(timeout) if wait else False
        self._run_shutdown_tasks()
        if wait and timeout is not None:
            idle = await self._wait_for_runs_async(timeout)  # the shutdown tasks, bounded too
        errors = await self._stop_executors_async(wait and (timeout is None or idle))
        self._finish_shutdown()
        if threading.get_ident() == self.event_loop_thread_id and self._own_loop_thread is None:
            self._detach()
        if errors:
            raise errors[0]

    def _after_background_shutdown(
        self, done: asyncio.Future[None] | concurrent.futures.Future[None]
    ) -> None:
        """Report how a shutdown that nobody awaits ended (one asked for by a run)."""
        self._closing = None
        exc = None if done.cancelled() else done.exception()
        if exc is not None:
            self.logger.error("shutdown asked for by a task failed", exc_info=exc)
        if self.event_loop is not None:  # (an attached loop's shutdown detached already)
            self._detach()

    def _detach(self) -> None:
        """Release the worker thread and, if the loop is ours, stop it."""
        thread, loop = self._own_loop_thread, self.event_loop
        self._own_loop_thread = None
        self._driver = None
        self.event_loop = None
        self.event_loop_thread_id = None
        if thread is not None and loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not threading.current_thread():
                thread.join()

    # -- context managers and ASGI -----------------------------------------------------------------

    def __enter__(self) -> AsyncIOScheduler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running:
            self.shutdown()

    async def __aenter__(self) -> AsyncIOScheduler:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.running:
            await self.shutdown_async()

    async def _start_for_asgi(self) -> None:
        self.start()


class NativeAsyncIOScheduler(AsyncIOScheduler):
    """An asyncio scheduler controlled with ``await start()`` / ``await shutdown()``,
    always on the caller's running loop."""

    def start(self, paused: bool = False) -> Coroutine[Any, Any, None]:  # type: ignore[override]
        """Start on the running loop: ``await scheduler.start()``.

        Like any coroutine, the one returned does nothing until awaited. Dropped without
        being awaited, it says so at once: an ERROR log line and a ``RuntimeWarning``,
        both naming ``await scheduler.start()`` (Python's own "coroutine was never
        awaited" warning says neither that the scheduler is not running nor what to
        write, and comes only when the coroutine is collected)."""
        return _StartCall(self, self._start(paused))

    async def _start(self, paused: bool) -> None:
        self._check_can_start()
        loop = asyncio.get_running_loop()
        self.event_loop_thread_id = threading.get_ident()
        self._attach(loop, paused)
        self._driver = loop.create_task(self._drive(), name="tickwork-scheduler")

    async def shutdown(  # type: ignore[override]
        self, wait: bool = True, timeout: float | None = None
    ) -> None:
        """Stop and wait (see :meth:`AsyncIOScheduler.shutdown_async`)."""
        try:
            await self.shutdown_async(wait, timeout)
        finally:
            self._detach()

    async def __aenter__(self) -> NativeAsyncIOScheduler:
        await self.start()
        return self

    def __enter__(self) -> AsyncIOScheduler:
        raise TypeError("NativeAsyncIOScheduler is used with 'async with', not 'with'")

    async def _start_for_asgi(self) -> None:
        await self.start()


class _StartCall(Coroutine[Any, Any, None]):
    """The coroutine :meth:`NativeAsyncIOScheduler.start` returns: its real coroutine,
    and a loud message if it is dropped without ever being awaited (or run as a task).
    A coroutine in every respect that matters (``asyncio.iscoroutine`` is true of it), so
    ``asyncio.create_task(scheduler.start())`` and ``asyncio.run`` take it too."""

    __slots__ = ("_coroutine", "_scheduler", "_used")

    def __init__(self, scheduler: NativeAsyncIOScheduler, coroutine: Coroutine[Any, Any, None]):
        self._scheduler = scheduler
        self._coroutine = coroutine
        self._used = False

    def __await__(self) -> Generator[Any, None, None]:
        self._used = True
        return self._coroutine.__await__()

    def send(self, value: Any) -> Any:
        """Run the coroutine to its next suspension (what an awaiting task does)."""
        self._used = True
        return self._coroutine.send(value)

    def throw(self, *args: Any) -> Any:
        """Raise an exception inside the coroutine."""
        self._used = True
        return self._coroutine.throw(*args)

    def close(self) -> None:
        """Close it without running it: deliberate, so nothing is reported."""
        self._used = True
        self._coroutine.close()

    def __del__(self) -> None:
        if self._used:
            return
        self._coroutine.close()  # (no second, vaguer "never awaited" warning)
        message = (
            "NativeAsyncIOScheduler.start() was called without await, so the scheduler "
            "did not start and none of its tasks will run: write `await scheduler.start()`"
            " (or use AsyncIOScheduler, whose start() is a plain call)"
        )
        self._scheduler.logger.error(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)


class _LoopHost:
    """What the executors of an asyncio scheduler see of it: the event hub, its loop and
    the loop's thread (see :class:`tickwork.executors.asyncio.LoopHost`)."""

    def __init__(self, scheduler: AsyncIOScheduler) -> None:
        self._scheduler = scheduler
        self.wants = scheduler._events.wants
        self.emit = scheduler._retrier.emit  # (it passes the events on to the hub)
        #: Named in an executor's error when it needs another kind of scheduler.
        self.scheduler_name = type(scheduler).__name__

    @property
    def event_loop(self) -> asyncio.AbstractEventLoop | None:
        """The scheduler's loop."""
        return self._scheduler.event_loop

    @property
    def event_loop_thread_id(self) -> int | None:
        """The thread the loop runs in."""
        return self._scheduler.event_loop_thread_id


def _loop_is_current(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
