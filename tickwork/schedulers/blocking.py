"""A scheduler that runs in the calling thread until it is shut down, for programs
whose only job is to run tasks (APScheduler 3's ``BlockingScheduler``)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from tickwork.schedulers._signals import SignalHandlers
from tickwork.schedulers.background import BackgroundScheduler

__all__ = ["BlockingScheduler"]


class BlockingScheduler(BackgroundScheduler):
    """``start()`` runs the scheduler in the calling thread and returns only after it has
    shut down: from another thread or a task calling :meth:`shutdown`, or on SIGTERM or
    SIGINT (Ctrl-C) when started in the main thread. A signal shuts it down the
    ordinary way (running tasks finish, or are bounded by ``shutdown_timeout``; the
    shutdown-trigger tasks run), and ``start()`` then returns.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._stop_requested = False
        #: Set when a shutdown has finished: start() returns only then, also when the
        #: shutdown was called from another thread or from a task.
        self._closed = threading.Event()

    def start(self, paused: bool = False) -> None:
        """Run until shut down (see the class docstring)."""
        self._closed.clear()
        self._start_core(paused)
        self._stop_requested = False
        self._wake.clear()
        handlers = SignalHandlers(
            self._request_stop,
            self.logger,
            (signal.SIGTERM, signal.SIGINT),
            chain=False,
        )
        installed = handlers.install()
        self._thread = threading.current_thread()
        try:
            self._drive()
        finally:
            self._thread = None
            if installed:
                handlers.restore()
        if self._stop_requested and self.running:
            self.shutdown()
        self._closed.wait()

    def _finish_shutdown(self) -> None:
        try:
            super()._finish_shutdown()
        finally:
            self._closed.set()

    def _request_stop(self, signum: int) -> None:
        # In a signal handler, on the main thread, which is this scheduler's own driver:
        # it cannot shut down here (it would wait for itself), so the driver's loop is
        # ended and start() shuts down once it has returned.
        self._stop_requested = True
        self._wake.set()

    def _keep_driving(self) -> bool:
        return self.running and not self._stop_requested
