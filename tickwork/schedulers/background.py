"""A scheduler with a thread of its own, for programs without an event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from tickwork.executors.base import BaseExecutor
from tickwork.executors.pool import ThreadPoolExecutor
from tickwork.schedulers.base import BaseScheduler

__all__ = ["BackgroundScheduler"]


class BackgroundScheduler(BaseScheduler):
    """Runs its passes in a daemon thread; tasks run in a thread pool by default.

    ``start()`` returns at once; ``shutdown()`` returns when the thread has stopped,
    shutdown-trigger tasks have run and (with ``wait=True``) running tasks finished.
    """

    def __init__(self, *, daemon: bool = True, **options: Any) -> None:
        super().__init__(**options)
        self.daemon = daemon
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def _create_default_executor(self) -> BaseExecutor:
        return ThreadPoolExecutor()

    def start(self, paused: bool = False) -> None:
        """Start the scheduler thread."""
        self._start_core(paused)
        self._wake.clear()
        self._thread = threading.Thread(
            target=self._drive, name="tickwork-scheduler", daemon=self.daemon
        )
        self._thread.start()

    def _drive(self) -> None:
        while self.running:
            try:
                delay = self._run_pass()
            except Exception:  # a bug in a pass must not kill the scheduler silently
                self.logger.exception("scheduler pass failed; retrying in 1 s")
                delay = 1.0
            if not self.running:
                break
            self._wake.wait(delay)
            self._wake.clear()

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
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
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
