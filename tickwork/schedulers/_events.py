"""The event hub: who listens for which events, and sending events to them.

Every part that reports something (the pass, the task manager, executors through
:class:`~tickwork.executors.base.ExecutorHost`) holds the hub, not the scheduler.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["EventHub", "Listener"]

Listener = Callable[[Any], None]


class EventHub:
    """Listeners with their masks. ``mask`` is the union of every listener's mask, so
    asking whether anyone wants an event is one ``&`` (the pass asks once per run, and an
    event nobody wants is never built)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.listeners: list[tuple[Listener, int]] = []
        self.mask = 0
        self._lock = threading.Lock()

    def add(self, callback: Listener, mask: int) -> None:
        """Call ``callback(event)`` for every event whose code is in ``mask``."""
        with self._lock:
            self.listeners = [*self.listeners, (callback, mask)]
            self.mask |= mask

    def remove(self, callback: Listener) -> None:
        """Stop calling ``callback`` (every registration of it)."""
        with self._lock:
            self.listeners = [(cb, mask) for cb, mask in self.listeners if cb != callback]
            combined = 0
            for _, mask in self.listeners:
                combined |= mask
            self.mask = combined

    def wants(self, code: int) -> bool:
        """True when some listener wants events with this code."""
        return bool(self.mask & code)

    def emit(self, event: Any) -> None:
        """Send ``event`` to the listeners that want its code. A listener that raises is
        logged and the others still get the event."""
        if not self.mask & event.code:
            return
        # The list is replaced, never changed in place: a listener added meanwhile (or
        # one removing itself) does not disturb this loop.
        for callback, mask in self.listeners:
            if event.code & mask:
                try:
                    callback(event)
                except Exception:
                    self.logger.exception("listener %r raised on %r", callback, event)
