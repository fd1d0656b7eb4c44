"""A scheduler with a thread of its own, for programs without an event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from tickwork.executors.base import BaseExecutor
from tickwork.executors.pool import ThreadPoolExecutor
from tickwork.schedulers._signals import SignalHandlers
from tickwork.schedulers.base import BaseScheduler

__all__ = ["BackgroundScheduler"]


class BackgroundScheduler(BaseScheduler):
    """Runs its passes in a daemon thread; tasks run in a thread pool by default.

    ``start()`` returns at once; ``shutdown()`` returns when the thread has stopped,
    shutdown-trigger tasks have run and (with ``wait=True``) running tasks finished.

    ``handle_signals=True`` (started from the main thread): SIGTERM shuts the scheduler
    down the ordinary way (shutdown-trigger tasks included) before the signal's previous
    handler runs, or the process exits with status 143 as SIGTERM's default would.
    Without it, SIGTERM ends a sync program at once and shutdown-trigger tasks never run
    (Ctrl-C raises ``KeyboardInterrupt``, which ``with scheduler:`` turns into a clean
    shutdown either way).
    """

    def __init__(
        self, *, daemon: bool = True, handle_signals: bool = False, **options: Any
    ) -> None:
        super().__init__(**options)
        self.daemon = daemon
        self.handle_signals = handle_signals
        self._signals: SignalHandlers | None = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        #: Set while no driver loop runs: shutdown waits on it (not on the thread: the
        #: BlockingScheduler's driver is the caller's own thread, which goes on after).
        self._driver_idle = threading.Event()
        self._driver_idle.set()

    def _create_default_executor(self) -> BaseExecutor:
        return ThreadPoolExecutor()

    def start(self, paused: bool = False) -> None:
        """Start the scheduler thread."""
        self._start_core(paused)
        self._wake.clear()
        self._driver_idle.clear()
        self._thread = threading.Thread(
            target=self._drive, name="tickwork-scheduler", daemon=self.daemon
        )
        self._thread.start()
        if self.handle_signals:
            self._signals = SignalHandlers(self._shutdown_on_signal, self.logger)
            self._signals.install()

    def _shutdown_on_signal(self, signum: int) -> None:
        if self.running:
            self.shutdown()

    def _drive(self) -> None:
        self._driver_idle.clear()
        try:
            self._drive_loop()
        finally:
            self._driver_idle.set()

    def _drive_loop(self) -> None:
        while self._keep_driving():
            try:
                delay = self._run_pass()
            except Exception:  # a bug in a pass must not kill the scheduler silently
                self.logger.exception("scheduler pass failed; retrying in 1 s")
                delay = 1.0
            if not self._keep_driving():
                break
            self._wake.wait(delay)
            self._wake.clear()

    def _keep_driving(self) -> bool:
        return self.running

    def wakeup(self) -> None:
        """Run a pass now. Thread-safe."""
        self._wake.set()

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop the thread; with ``wait`` let running tasks finish (for at most
        ``timeout`` seconds, default the scheduler's ``shutdown_timeout``: see
        :class:`~tickwork.schedulers.base.BaseScheduler`); run shutdown-trigger tasks;
        stop executors; shut stores down."""
        timeout = self._shutdown_timeout(timeout)
        self._stop_processing()
        self._wake.set()
        if self._signals is not None:
            self._signals.restore()
            self._signals = None
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            self._driver_idle.wait()
        self._thread = None
        if wait and self._called_from_own_run():
            # A task shutting its own scheduler down: waiting here would wait for this
            # very run. The rest goes on in a thread of its own and ends after it returns.
            threading.Thread(
                target=self._complete_in_background,
                args=(wait, timeout),
                name="tickwork-shutdown",
            ).start()
            return
        self._complete_shutdown(wait, timeout)

    def _complete_in_background(self, wait: bool, timeout: float | None) -> None:
        try:
            self._complete_shutdown(wait, timeout)
        except Exception:
            self.logger.exception("shutdown asked for by a task failed")

    def _complete_shutdown(self, wait: bool, timeout: float | None) -> None:
        self._wait_for_pass()
        idle = self._wait_for_runs(timeout) if wait else False
        self._run_shutdown_tasks()
        if wait and timeout is not None:
            idle = self._wait_for_runs(timeout)  # the shutdown tasks: bounded as well
        errors = self._stop_executors(wait and (timeout is None or idle))
        self._finish_shutdown()
        if errors:
            raise errors[0]

    async def shutdown_async(self, wait: bool = True, timeout: float | None = None) -> None:
        """:meth:`shutdown` without blocking the calling event loop."""
        await asyncio.to_thread(self.shutdown, wait, timeout)

    async def _start_for_asgi(self) -> None:
        self.start()

    def __enter__(self) -> BackgroundScheduler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running:
            self.shutdown()

    async def __aenter__(self) -> BackgroundScheduler:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.running:
            await self.shutdown_async()
