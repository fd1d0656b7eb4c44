"""Deadlines for runs that cannot be stopped: a thread running a plain function.

A thread cannot be interrupted from outside, so a run in one that goes past its task's
``timeout`` is *reported* at the limit (its ``TASK_TIMEOUT`` event is sent by the
watchdog's thread, on time) and goes on; the executor keeps its ``max_instances`` slot
until it returns, and drops what it returns then.

One watchdog thread per executor, started with the first deadline and ended when none
is left: a scheduler whose tasks have no ``timeout`` never starts it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable

__all__ = ["Watchdog"]


class Watchdog:
    """Calls a callback when its deadline passes, unless disarmed first."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, Callable[[], None]] = {}
        self._tokens = itertools.count(1)
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, callback: Callable[[], None]) -> int:
        """Call ``callback`` (on the watchdog's thread) in ``seconds``; return the token
        that disarms it."""
        token = next(self._tokens)
        with self._cond:
            self._armed[token] = callback
            heapq.heappush(self._heap, (time.monotonic() + seconds, token))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return token

    def disarm(self, token: int) -> bool:
        """Cancel the callback; False when it has been called already (or is being)."""
        with self._cond:
            return self._armed.pop(token, None) is not None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    # Disarmed deadlines are dropped as they come up (lazy deletion).
                    while self._heap and self._heap[0][1] not in self._armed:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._thread = None  # the next arm() starts another
                        return
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        _, token = heapq.heappop(self._heap)
                        callback = self._armed.pop(token)
                        break
                    self._cond.wait(wait)
            # Outside the lock: it logs and sends events. The executors' callbacks don't
            # raise; if one did, the other deadlines must still fire.
            with contextlib.suppress(Exception):
                callback()
