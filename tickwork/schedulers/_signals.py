"""Shutting a scheduler down on SIGTERM and SIGINT in a sync program.

Python turns SIGINT into ``KeyboardInterrupt``, which a ``with scheduler:`` block turns
into a clean shutdown; SIGTERM (what ``kill``, systemd, Docker and Kubernetes send)
ends the process at once by default: running tasks are cut off and shutdown-trigger
tasks never run. :class:`SignalHandlers` installs handlers that shut the scheduler
down first, then do what the signal did before (the previous handler, or exit with
status ``128 + signal`` as the default action would).

Handlers can only be installed from the main thread; elsewhere this says so in the log
and does nothing (the program's own main thread owns its signals).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["SignalHandlers"]

Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class SignalHandlers:
    """Handlers for ``signals`` that call ``on_signal(signum)`` and then chain to what
    was installed before."""

    def __init__(
        self,
        on_signal: Callable[[int], None],
        logger: logging.Logger,
        signals: tuple[signal.Signals, ...] = (signal.SIGTERM,),
        chain: bool = True,
    ) -> None:
        self._on_signal = on_signal
        self._logger = logger
        self._signals = signals
        self._chain = chain
        self._previous: dict[signal.Signals, Handler] = {}

    def install(self) -> bool:
        """Install the handlers; False (and a log line) off the main thread."""
        if threading.current_thread() is not threading.main_thread():
            self._logger.warning(
                "signal handlers not installed: only the main thread can; shut the "
                "scheduler down from your own handler"
            )
            return False
        for signum in self._signals:
            self._previous[signum] = signal.signal(signum, self._handle)
        return True

    def restore(self) -> None:
        """Put the previous handlers back (main thread only; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous.items():
            if signal.getsignal(signum) == self._handle and previous is not None:
                signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._logger.info("received %s: shutting the scheduler down", signal.Signals(signum).name)
        previous = self._previous.get(signal.Signals(signum))
        self._on_signal(signum)
        self.restore()
        if not self._chain:
            return
        if callable(previous):
            previous(signum, frame)
        elif previous in (signal.SIG_DFL, None):
            # What the default action would have done: end the process, with the
            # status a shell reports for it (143 for SIGTERM).
            raise SystemExit(128 + signum)
