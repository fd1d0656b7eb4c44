"""Driving an application's scheduler from the outside, whatever its kind: what the
``tickwork`` command does with ``--app module:scheduler``.

* :func:`run_in_foreground` runs it until SIGINT or SIGTERM (``tickwork run``, like
  ``celery beat``): a ``BlockingScheduler`` in the calling thread, a
  ``BackgroundScheduler`` in its thread while this one waits for the signal, the
  asyncio kinds on an event loop of their own in the calling thread.
* :func:`started_paused` starts it paused for a while (the inspection commands): it
  then reads its stores, and its tasks from the application's code are in them, as when
  the application starts, but it runs nothing.

Only public methods of the schedulers are used, so this works on every kind without
knowing their insides.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from tickwork.events import SCHEDULER_SHUTDOWN
from tickwork.exceptions import ConfigurationError, SchedulerAlreadyRunningError
from tickwork.schedulers._signals import SignalHandlers
from tickwork.schedulers.asyncio import AsyncIOScheduler, NativeAsyncIOScheduler
from tickwork.schedulers.background import BackgroundScheduler
from tickwork.schedulers.blocking import BlockingScheduler

__all__ = ["check_scheduler", "run_in_foreground", "started_paused"]

Scheduler = BackgroundScheduler | AsyncIOScheduler
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def check_scheduler(obj: object, ref: str) -> Scheduler:
    """``obj`` if it is a tickwork scheduler, else a ``ConfigurationError`` naming what
    ``ref`` (the ``module:attribute`` it came from) is instead."""
    if isinstance(obj, BackgroundScheduler | AsyncIOScheduler):
        return obj
    raise ConfigurationError(
        f"{ref!r} is a {type(obj).__name__}, not a tickwork scheduler (expected "
        "'module:attribute' naming a BackgroundScheduler, BlockingScheduler, "
        "AsyncIOScheduler or NativeAsyncIOScheduler)"
    )


# -- running until a signal -------------------------------------------------------------------


def run_in_foreground(scheduler: Scheduler) -> None:
    """Start ``scheduler`` and return when it has shut down: on SIGTERM or SIGINT (the
    ordinary shutdown: running tasks finish, shutdown-trigger tasks run), or when its
    own code shuts it down. Call from the main thread (signals are delivered there)."""
    if scheduler.running:
        raise SchedulerAlreadyRunningError(
            "the scheduler is already running: its module started it when imported; "
            "leave starting it to `tickwork run` (or run the module itself)"
        )
    if isinstance(scheduler, BlockingScheduler):
        scheduler.start()  # handles SIGTERM and SIGINT itself, returns once shut down
    elif isinstance(scheduler, AsyncIOScheduler):
        asyncio.run(_serve_on_own_loop(scheduler))
    else:
        _serve_in_thread(scheduler)


def _serve_in_thread(scheduler: BackgroundScheduler) -> None:
    stop = threading.Event()
    scheduler.add_listener(lambda event: stop.set(), SCHEDULER_SHUTDOWN)
    # chain=False: the signal means "shut down", not also KeyboardInterrupt/exit; the
    # handlers are removed after the first signal, so a second Ctrl-C interrupts a
    # shutdown that hangs.
    handlers = SignalHandlers(lambda signum: stop.set(), scheduler.logger, _STOP_SIGNALS, False)
    installed = handlers.install()
    try:
        scheduler.start()
        stop.wait()
    finally:
        if installed:
            handlers.restore()
    if scheduler.running:
        scheduler.shutdown()


async def _serve_on_own_loop(scheduler: AsyncIOScheduler) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_shutdown(event: object) -> None:  # (its own code shut it down)
        loop.call_soon_threadsafe(stop.set)

    scheduler.add_listener(on_shutdown, SCHEDULER_SHUTDOWN)

    def on_signal(signum: signal.Signals) -> None:
        scheduler.logger.info("received %s: shutting the scheduler down", signum.name)
        for each in _STOP_SIGNALS:  # a second Ctrl-C then interrupts a hung shutdown
            loop.remove_signal_handler(each)
        stop.set()

    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await _start(scheduler, paused=False)
        await stop.wait()
        if scheduler.running:
            await _shutdown(scheduler)
    finally:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def _start(scheduler: AsyncIOScheduler, paused: bool) -> None:
    if isinstance(scheduler, NativeAsyncIOScheduler):
        await scheduler.start(paused=paused)
    else:
        scheduler.start(paused=paused)  # attaches to the running loop


async def _shutdown(scheduler: AsyncIOScheduler) -> None:
    if isinstance(scheduler, NativeAsyncIOScheduler):
        await scheduler.shutdown()
    else:
        await scheduler.shutdown_async()


# -- started paused, for inspection ----------------------------------------------------------


@contextmanager
def started_paused(scheduler: Scheduler) -> Iterator[Scheduler]:
    """``scheduler`` started paused for the block (its stores read, its tasks added to
    them as when the application starts; nothing run), then shut down without running
    its shutdown-trigger tasks: they belong to the application's own shutdowns. One its
    module already started is paused for the block instead."""
    if scheduler.running:
        scheduler.pause()
        try:
            yield scheduler
        finally:
            _detach_stores(scheduler)
            _stop_any(scheduler)
    elif isinstance(scheduler, AsyncIOScheduler):
        with _loop_in_thread() as run:
            run(_start(scheduler, paused=True))
            try:
                yield scheduler
            finally:
                _detach_stores(scheduler)
                run(_shutdown(scheduler))
    else:
        if isinstance(scheduler, BlockingScheduler):
            # Its own start() would drive in this thread until shut down; the driver of
            # the class it extends runs the same passes in a thread of its own.
            BackgroundScheduler.start(scheduler, paused=True)
        else:
            scheduler.start(paused=True)
        try:
            yield scheduler
        finally:
            _detach_stores(scheduler)
            scheduler.shutdown()


def _detach_stores(scheduler: Scheduler) -> None:
    """Remove the stores (their tasks stay in them): a shutdown then finds no
    shutdown-trigger task to run."""
    for alias in list(scheduler.get_scheduler_info()["stores"]):
        scheduler.remove_store(alias)


def _stop_any(scheduler: Scheduler) -> None:
    if not scheduler.running:
        return
    if isinstance(scheduler, NativeAsyncIOScheduler):
        loop = scheduler.event_loop
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(scheduler.shutdown(), loop).result()
        return
    scheduler.shutdown()


@contextmanager
def _loop_in_thread() -> Iterator[Callable[[Coroutine[Any, Any, None]], None]]:
    """An event loop running in a daemon thread, and a function that runs a coroutine on
    it and waits for the result: the calling thread stays free for the sync calls."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="tickwork-cli-loop", daemon=True)
    thread.start()

    def run(coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    try:
        yield run
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
