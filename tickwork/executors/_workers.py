"""A minimal pool of worker threads for the executors' thread-bound runs.

:class:`concurrent.futures.ThreadPoolExecutor` builds a ``Future`` (with its own
condition variable), a work item and a semaphore round-trip for every call, and its
workers update all of them under the GIL: about 8 us of CPU per run, measured, when the
run itself is a counter increment. The executors need none of it: a run reports its own
outcome (``BaseExecutor._execute``) and nobody waits on a per-run future. This pool is a
queue and threads; about 0.5 us per run.

Semantics kept from ``concurrent.futures``: at most ``max_workers`` threads, started on
demand; ``submit`` after ``shutdown`` raises :class:`RuntimeError`;
``shutdown(wait=True)`` lets every queued call run and joins the threads;
``shutdown(wait=False)`` returns at once and queued calls still run; threads are not
daemons, and at interpreter exit they finish the queue and stop. Better than it: a call
never waits for a busy worker while the pool may still start a thread (see
:meth:`ThreadWorkers.submit`), and a forked child gets working pools (see
:meth:`ThreadWorkers._reset_after_fork`).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["ThreadWorkers"]

_Call = tuple[Callable[..., Any], tuple[Any, ...]] | None

_logger = logging.getLogger("tickwork.executors")

#: Every pool, for the interpreter-exit and after-fork hooks below (weakly: a pool with
#: threads is kept alive by them anyway).
_pools: weakref.WeakSet[ThreadWorkers] = weakref.WeakSet()
_exiting = False


def _at_exit() -> None:
    """Stop every pool: workers finish the queued calls, then end, so the interpreter's
    join of non-daemon threads returns."""
    global _exiting
    _exiting = True
    for pool in list(_pools):
        pool.shutdown(wait=False)


def _after_fork_in_child() -> None:
    for pool in list(_pools):
        pool._reset_after_fork()


# Runs before the interpreter joins non-daemon threads (an ``atexit`` hook would run
# after, too late). Where the hook does not exist, workers are daemons instead.
_register_atexit: Callable[[Callable[[], None]], None] | None = getattr(
    threading, "_register_atexit", None
)
if _register_atexit is not None:
    _register_atexit(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class ThreadWorkers:
    """Up to ``max_workers`` threads calling what :meth:`submit` queues, in order."""

    def __init__(self, max_workers: int | None = None, thread_name_prefix: str = "") -> None:
        if max_workers is None:
            max_workers = min(32, (os.cpu_count() or 1) + 4)  # concurrent.futures' default
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers!r}")
        self.max_workers = max_workers
        self._prefix = thread_name_prefix or "tickwork-worker"
        #: Guards ``_threads``, ``_idle`` and ``_shutdown``, and orders ``submit``'s put
        #: against ``shutdown``'s end-of-queue markers.
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        #: Workers about to wait for a call that no ``submit`` has counted on yet.
        self._idle = 0
        self._shutdown = False
        _pools.add(self)

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``; it runs in a worker thread, its outcome is its own
        business (exceptions it lets out are logged and dropped).

        Raises :class:`RuntimeError` after :meth:`shutdown` (the call is not queued)."""
        with self._lock:
            # Checked and queued under the lock: a call is either refused or queued
            # before shutdown's end-of-queue markers, so it always runs.
            if self._shutdown:
                raise RuntimeError("cannot run new calls after shutdown")
            # Each queued call counts on one worker: a waiting one nobody counted on yet,
            # else a new thread. Never a busy worker while a thread may still be started,
            # so calls that block (I/O, or a call waiting for another) run side by side.
            # (A worker counts itself idle before it waits and a new thread starts as
            # counted on, so whichever worker takes the call, one stays for each
            # counted-on call: the count is exact below max_workers, and moot at it.)
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self.max_workers:
                self._start_thread()
            self._queue.put((fn, args))

    def _start_thread(self) -> None:
        """Start one more worker (with the lock held)."""
        if _exiting:
            raise RuntimeError("cannot start worker threads at interpreter exit")
        thread = threading.Thread(
            target=self._work,
            name=f"{self._prefix}_{len(self._threads)}",
            daemon=_register_atexit is None,
        )
        thread.start()
        self._threads.append(thread)

    def _work(self) -> None:
        get, lock = self._queue.get, self._lock
        call = get()  # a new thread was counted on by the submit that started it
        while call is not None:
            fn, args = call
            # The call reports its own failures; the worker goes on. (try/except, not a
            # context manager: one per call costs more than the call.)
            try:
                fn(*args)
            except Exception:
                _logger.exception("a call in worker thread %r raised", self._prefix)
            except BaseException:
                pass
            del call, fn, args  # don't keep the last call's arguments alive while idle
            with lock:
                self._idle += 1
            call = get()

    def owns_current_thread(self) -> bool:
        """True when called from one of this pool's threads."""
        return threading.current_thread() in self._threads

    def shutdown(self, wait: bool = True) -> None:
        """Refuse new calls and stop the threads once the queued calls are done; with
        ``wait``, return only then (from a worker, without waiting for itself)."""
        with self._lock:
            if not self._shutdown:
                self._shutdown = True
                for _ in self._threads:
                    self._queue.put(None)  # one end-of-queue marker per thread
            threads = list(self._threads)
        if wait:
            current = threading.current_thread()
            for thread in threads:
                if thread is not current:
                    thread.join()

    def _reset_after_fork(self) -> None:
        """In a forked child: forget the parent's threads (they don't exist here) and its
        queued calls (the parent runs them; running them here too would run them twice),
        and take a fresh lock (another parent thread may have held it at the fork)."""
        self._lock = threading.Lock()
        self._queue = queue.SimpleQueue()
        self._threads = []
        self._idle = 0
