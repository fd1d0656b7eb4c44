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
daemons, and at interpreter exit they finish the queue and stop. A forked child gets
working pools (see :meth:`ThreadWorkers._reset_after_fork`).

Different from it: threads are added when they help, not for every call that finds the
workers busy. ``concurrent.futures`` starts a thread per such call, so a burst of 10,000
short calls gets ``max_workers`` threads that all want the GIL at once; the event loop's
thread then gets one switch interval (5 ms) in ``max_workers + 1``, and a burst measured
30-150 ms of loop lag with 10 workers against 6-35 ms with one, at up to twice the
throughput. Here, calls that find every worker busy wait in a backlog, and a grower
thread looks every :data:`GROW_WINDOW` seconds while they do. It adds threads for the
backlog (up to ``max_workers``) when the process used less than half a core in that
window (the busy workers wait, on I/O or a lock or a call still queued, and more of
them can wait side by side), or when no call has finished for :data:`STUCK_AFTER`
seconds (one long computation holds every worker). Workers that keep finishing calls
while the GIL is busy are left alone: more threads would only queue for it. (A shorter
pause in the calls while the process is busy is not enough: a garbage collection or the
event loop's own work holds the GIL that long.) So a call waits behind busy workers for
about one window while they wait, :data:`STUCK_AFTER` at most while they compute, and
calls that block still run side by side, ``max_workers`` at a time. A call that a worker
submits to its own pool (it may wait for it) never waits behind busy workers.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["ThreadWorkers"]

_Call = tuple[Callable[..., Any], tuple[Any, ...]] | None

_logger = logging.getLogger("tickwork.executors")

#: Seconds between the grower's looks at busy workers (see the module docstring). Longer
#: than the interpreter's switch interval (5 ms), so a window always shows a worker's
#: share of the GIL; short enough that a blocked worker delays the backlog little.
GROW_WINDOW = 0.01
#: A process using less than this share of one core in a window leaves the GIL mostly
#: free: its busy workers are waiting (I/O, locks), and more threads get more done.
_IDLE_CPU_SHARE = 0.5
#: Seconds without a finished call, the process busy, after which the busy workers are
#: taken to be stuck in long calls (see the module docstring).
STUCK_AFTER = 0.1

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
        #: Guards the counts and lists below and ``_shutdown``, and orders ``submit``'s
        #: put against ``shutdown``'s end-of-queue markers.
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        #: Workers about to wait for a call that no ``submit`` has counted on yet.
        self._idle = 0
        #: Queued calls no worker counts on yet: they wait for a busy one (or a new one).
        self._backlog = 0
        #: Calls finished so far: the grower's measure of progress.
        self._finished = 0
        #: The grower thread waits on this (with ``_lock``) while there is no backlog.
        self._backlog_added = threading.Condition(self._lock)
        self._grower: threading.Thread | None = None
        #: The workers' thread idents (see submit).
        self._idents: set[int] = set()
        self._shutdown = False
        #: Called by a worker each time it is done with a call and counted free (see
        #: :meth:`free`), while someone waits for a free worker (the run-now queue);
        #: ``None`` (the usual case) costs one check per call.
        self.on_free: Callable[[], None] | None = None
        _pools.add(self)

    def free(self) -> int:
        """How many more calls would start at once now: ``max_workers`` less the calls
        queued or running (0 when calls wait in the backlog)."""
        with self._lock:
            # Each queued or running call counts on a worker that is not idle (a thread
            # running it, or counted on for it), or waits in the backlog: see submit.
            taken = len(self._threads) - self._idle + self._backlog
            return max(self.max_workers - taken, 0)

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
            # else the first thread, else the backlog, which busy workers take from as
            # they finish and the grower gives new threads to (see the module docstring).
            # (A worker counts itself idle before it waits and a new thread starts as
            # counted on, so whichever worker takes the call, one stays for each
            # counted-on call: the count is exact.)
            if self._idle:
                self._idle -= 1
            elif not self._threads or (
                len(self._threads) < self.max_workers and threading.get_ident() in self._idents
            ):
                # The first thread; or a call submitting to its own pool, which may wait
                # for what it submits: that never waits behind busy workers.
                self._start_thread()
            else:
                self._backlog += 1
                if len(self._threads) < self.max_workers:
                    if self._grower is None:
                        self._start_grower()
                    elif self._backlog == 1:
                        self._backlog_added.notify()
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

    def _start_grower(self) -> None:
        """Start the grower thread (with the lock held)."""
        if _exiting:
            return  # no new threads at exit; the workers there finish the queue
        self._grower = threading.Thread(
            target=self._grow, name=f"{self._prefix}_grower", daemon=_register_atexit is None
        )
        self._grower.start()

    def _grow(self) -> None:
        """The grower: while calls wait in the backlog, look at the busy workers every
        :data:`GROW_WINDOW` and add threads when they are stuck or waiting."""
        stalled = 0.0  # seconds since a call last finished, while calls waited
        with self._lock:
            # Also after shutdown, while calls wait: they may be what a busy one waits for.
            while not _exiting and len(self._threads) < self.max_workers:
                if not self._backlog:
                    if self._shutdown:
                        return
                    stalled = 0.0
                    self._backlog_added.wait()
                    continue
                finished, cpu = self._finished, time.process_time()
                began = time.monotonic()
                self._backlog_added.wait(GROW_WINDOW)
                window = time.monotonic() - began
                if not self._backlog or window < GROW_WINDOW * 0.9:
                    continue  # nothing waits, or woken early: measure a whole window
                cpu_used = time.process_time() - cpu
                stalled = stalled + window if self._finished == finished else 0.0
                if self._more_threads_help(stalled, cpu_used, window):
                    for _ in range(min(self._backlog, self.max_workers - len(self._threads))):
                        self._backlog -= 1
                        self._start_thread()
                        if self._shutdown:
                            self._queue.put(None)  # its end-of-queue marker
                    stalled = 0.0

    @staticmethod
    def _more_threads_help(stalled: float, cpu_used: float, window: float) -> bool:
        """Would more threads get the backlog done sooner, given that no call finished
        for the last ``stalled`` seconds and the whole process used ``cpu_used`` seconds
        of CPU in the last ``window``?"""
        # The interpreter mostly idle: the workers wait (I/O, locks, a queued call), and
        # more of them can wait side by side. Or stuck for long while the process is busy:
        # long computations hold the workers. Otherwise the GIL is busy, and more threads
        # only queue for it.
        return cpu_used < window * _IDLE_CPU_SHARE or stalled >= STUCK_AFTER

    def _work(self) -> None:
        self._idents.add(threading.get_ident())
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
                self._finished += 1
                if self._backlog:
                    self._backlog -= 1  # the next call is this worker's
                else:
                    self._idle += 1
            on_free = self.on_free
            if on_free is not None:
                try:
                    on_free()
                except Exception:  # (a watcher's bug must not end the worker)
                    _logger.exception("the free-worker callback of %r raised", self._prefix)
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
                self._backlog_added.notify()  # the grower stops
            threads = list(self._threads)
        if wait:
            current = threading.current_thread()
            while threads:
                for thread in threads:
                    if thread is not current:
                        thread.join()
                # The grower may have started threads meanwhile, for calls still queued.
                with self._lock:
                    threads = [t for t in self._threads if t.is_alive() and t is not current]

    def _reset_after_fork(self) -> None:
        """In a forked child: forget the parent's threads (they don't exist here) and its
        queued calls (the parent runs them; running them here too would run them twice),
        and take a fresh lock (another parent thread may have held it at the fork)."""
        self._lock = threading.Lock()
        self._backlog_added = threading.Condition(self._lock)
        self._queue = queue.SimpleQueue()
        self._threads = []
        self._idle = 0
        self._backlog = 0
        self._finished = 0
        self._grower = None
        self._idents = set()
        self.on_free = None
