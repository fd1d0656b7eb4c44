"""A pool of worker processes that can stop one worker without the others.

:class:`concurrent.futures.ProcessPoolExecutor` cannot terminate the worker running one
call (a hung run would hold its worker, and its ``max_instances`` slot, forever), and
one worker that dies (a segfault, ``os._exit``, the OOM killer) breaks the whole pool:
every queued call fails with it. This pool is small and does only what the
:class:`~tickwork.executors.pool.ProcessPoolExecutor` needs:

* Each worker is a process with a pipe of its own, so the parent always knows which
  worker runs which instance, and can terminate exactly that one (``SIGTERM``, then
  ``SIGKILL`` after :data:`GRACE` seconds) when a run goes past its task's ``timeout``
  or is cancelled. A new worker takes its place at once; the others go on.
* A worker gets one instance at a time (never a queue of them: a run queued behind a
  hung one in a busy worker's pipe could neither start elsewhere nor be cancelled), and
  answers with one message per run time, so the parent knows when each run ends and the
  next begins: a ``timeout`` applies to each run time of an instance on its own.
* Instances wait in the parent until a worker is idle. ``submit`` hands an instance to
  an idle worker from the caller's thread (no thread hop on the usual path); a manager
  thread reads the answers, hands the next instance to the worker that answered, and
  watches deadlines and the workers' process sentinels.
* Workers are started on demand, up to ``max_workers``, and replaced when one ends
  (terminated, or dead on its own) so the pool keeps its size.

The events of an instance are handed to ``host.finish`` exactly once, when its last run
ends (on the manager thread, or on the caller's thread for a cancelled or unpicklable
instance).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import os
import selectors
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any, Literal, Protocol

from tickwork.events import TaskExecutionEvent
from tickwork.exceptions import RunCancelledError, RunTimeoutError
from tickwork.executors._process_worker import serve
from tickwork.executors.base import _error_event

__all__ = ["GRACE", "Instance", "PoolHost", "ProcessPool"]

#: Seconds a worker terminated with SIGTERM gets to end before it is killed (SIGKILL).
#: A task may handle SIGTERM to clean up; one that ignores it must not keep a slot.
GRACE = 1.0

_clock = time.perf_counter


class PoolHost(Protocol):
    """What the pool asks of its executor: where an instance's events go, and the logger
    its own lines (terminated and dead workers) are written on."""

    @property
    def logger(self) -> logging.Logger: ...

    def finish(self, instance: Instance, events: list[TaskExecutionEvent]) -> None:
        """The instance is done: ``events`` has one event per run time, in order."""
        ...


class Instance:
    """One instance sent to the pool: a task's run times, run one after the other."""

    __slots__ = (
        "args",
        "data",
        "done",
        "events",
        "fn",
        "kwargs",
        "run_times",
        "store",
        "task_id",
        "timeout",
    )

    def __init__(
        self,
        task_id: str,
        store: str | None,
        fn: Any,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        run_times: list[datetime],
        timeout: float | None,
    ) -> None:
        self.task_id = task_id
        self.store = store
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.run_times = run_times
        self.timeout = timeout
        #: How many of the run times have ended (reported by the worker, or stopped).
        self.done = 0
        self.events: list[TaskExecutionEvent] = []
        #: The pickled job, made once at submit (a resumed instance makes its own).
        self.data: memoryview | None = None

    def payload(self) -> memoryview:
        """What a worker is sent: the call and the run times not done yet."""
        if self.data is not None and self.done == 0:
            return self.data
        job = (self.task_id, self.store, self.fn, self.args, self.kwargs)
        return ForkingPickler.dumps((*job, self.run_times[self.done :]))

    def end_rest(self, exc: BaseException, duration: float | None) -> None:
        """End the run in progress (it ran ``duration`` seconds) and the ones not started
        with ``exc`` (the later ones without a duration)."""
        for index in range(self.done, len(self.run_times)):
            took = duration if index == self.done else None
            self.events.append(
                _error_event(self.task_id, self.store, self.run_times[index], exc, took)
            )
        self.done = len(self.run_times)

    def holds(self, task_id: str | None, run_time: datetime | None) -> bool:
        """Whether a cancel of ``task_id`` (``None``: every task) at ``run_time``
        (``None``: any) concerns this instance: it holds that run, not ended yet."""
        if task_id is not None and task_id != self.task_id:
            return False
        return run_time is None or run_time in self.run_times[self.done :]


class _Worker:
    """A worker process and the parent's end of its pipe."""

    __slots__ = ("began", "conn", "deadline", "instance", "kill_at", "process", "stopped")

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        #: The instance it runs, ``None`` when idle.
        self.instance: Instance | None = None
        #: When the run in progress began (as the parent knows it), and when it is due
        #: to end (``None``: no timeout).
        self.began = 0.0
        self.deadline: float | None = None
        #: Set when the pool terminated it; then ``kill_at`` is when it gets SIGKILL if
        #: it has not ended by then (``None`` once it got it).
        self.stopped = False
        self.kill_at: float | None = None


class ProcessPool:
    """``max_workers`` worker processes, started on demand (see the module docstring)."""

    def __init__(self, max_workers: int, host: PoolHost, name: str) -> None:
        self._max_workers = max_workers
        self._host = host
        self._name = name
        self._context = multiprocessing.get_context()
        self._lock = threading.Lock()
        self._queue: deque[Instance] = deque()
        #: Live workers (idle or busy); terminated ones move to _dying until reaped.
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []
        self._dying: list[_Worker] = []
        #: How many workers the pool keeps: grows with demand up to max_workers.
        self._size = 0
        self._closing = False
        #: Made with the manager thread, at the first submit (a pool that never runs
        #: anything, like the copy a forked child gets, has neither).
        self._thread: threading.Thread | None = None
        self._wake_fds: tuple[int, int] | None = None
        self._selector: selectors.BaseSelector | None = None
        _pools.add(self)

    # -- the caller's side ---------------------------------------------------------------

    def submit(self, instance: Instance) -> None:
        """Run the instance on an idle worker, or queue it until one is idle."""
        try:
            instance.data = instance.payload()
        except Exception as exc:  # not picklable: it cannot run (nothing started)
            instance.end_rest(exc, None)
            self._host.finish(instance, instance.events)
            return
        with self._lock:
            if self._closing:
                raise RuntimeError("cannot run tasks after the process pool is shut down")
            if self._thread is None:
                self._start_manager()
            if not self._idle:
                self._queue.append(instance)
                if self._size < self._max_workers:
                    self._size += 1
                    self._wake()  # the manager starts the worker
                return
            worker = self._idle.pop()
            self._assign(worker, instance)
        self._send(worker, instance)

    def free(self) -> int:
        """How many more instances would start at once now: ``max_workers`` less the
        instances running or queued (0 when instances wait for a worker)."""
        with self._lock:
            taken = len(self._workers) - len(self._idle) + len(self._queue)
            return max(self._max_workers - taken, 0)

    def cancel(self, task_id: str | None, run_time: datetime | None, reason: str) -> int:
        """Cancel the instances holding ``task_id``'s run at ``run_time`` (``None``:
        every instance of the task; ``task_id`` ``None``: every instance): queued ones
        are dropped, running ones have their worker terminated. Every run of theirs not
        ended yet ends ``TASK_CANCELLED``. Returns how many instances were cancelled."""
        exc = RunCancelledError(reason)
        ended: list[Instance] = []
        with self._lock:
            for instance in [i for i in self._queue if i.holds(task_id, run_time)]:
                self._queue.remove(instance)
                instance.end_rest(exc, None)
                ended.append(instance)
            now = _clock()
            for worker in list(self._workers):
                running = worker.instance
                if running is not None and running.holds(task_id, run_time):
                    running.end_rest(exc, now - worker.began)
                    ended.append(running)
                    self._terminate(worker, f"to cancel its run of task {running.task_id!r}")
        for instance in ended:
            self._host.finish(instance, instance.events)
        return len(ended)

    def shutdown(self, wait: bool = True) -> None:
        """Take no more instances; the queued and active ones still run (timeouts still
        apply), then the workers stop. ``wait``: return only then."""
        with self._lock:
            self._closing = True
            thread = self._thread
            self._wake()
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()

    # -- the manager thread --------------------------------------------------------------

    def _start_manager(self) -> None:
        """Make the wake-up pipe and the selector, and start the thread (lock held)."""
        read, write = os.pipe()
        os.set_blocking(write, False)
        self._wake_fds = (read, write)
        self._selector = selectors.DefaultSelector()
        self._selector.register(read, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._manage, name=self._name, daemon=True)
        self._thread.start()

    def _wake(self) -> None:
        """Make the manager look again (lock held: the pipe is not closed meanwhile)."""
        if self._wake_fds is not None:
            with contextlib.suppress(BlockingIOError):  # (it has wake-ups to read)
                os.write(self._wake_fds[1], b"x")

    def _manage(self) -> None:
        """Wait for answers, exits and deadlines until the pool is shut down and idle.

        Only this thread touches the selector and reads the workers' pipes."""
        selector = self._selector
        assert selector is not None
        assert self._wake_fds is not None
        wake = self._wake_fds[0]
        try:
            while (timeout := self._prepare()) is not False:
                for key, _ in selector.select(timeout):
                    if key.data is None:
                        os.read(wake, 4096)
                    elif isinstance(key.data, _Worker):
                        self._on_message(key.data)
                    else:
                        self._on_exit(key.data[0])
                self._on_deadlines()
        except Exception:  # a bug here must not leave runs waiting silently
            self._host.logger.exception("the process pool's manager thread failed")
            self.abandon("the process pool's manager thread failed")
        finally:
            self._stop_workers()
            with self._lock:
                selector.close()
                for fd in self._wake_fds:
                    os.close(fd)
                self._wake_fds = None

    def _prepare(self) -> float | Literal[False] | None:
        """Before each wait: start the missing workers and give them queued instances;
        return the seconds until the nearest deadline (``None``: none), or ``False``
        when the pool is shut down and every instance has ended."""
        while True:
            with self._lock:
                if self._closing and not self._queue and len(self._idle) == len(self._workers):
                    return False
                if len(self._workers) >= self._size or (self._closing and not self._queue):
                    times = [w.deadline for w in self._workers if w.deadline is not None]
                    times += [w.kill_at for w in self._dying if w.kill_at is not None]
                    return max(min(times) - _clock(), 0.0) if times else None
            worker = self._spawn()
            if worker is None:
                return 1.0  # (try again in a second)
            with self._lock:
                self._workers.append(worker)
                self._idle.append(worker)
                sends = self._dispatch()
            for target, instance in sends:
                self._send(target, instance)

    def _spawn(self) -> _Worker | None:
        """Start a worker process (lock not held: a fork or a spawn takes a while)."""
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=serve, args=(child_end,), name=f"{self._name}-worker", daemon=False
        )
        try:
            process.start()
        except Exception as exc:  # e.g. too many processes: fail what waits, if no worker
            self._host.logger.exception("could not start a worker process")
            parent_end.close()
            child_end.close()
            self._fail_queue_if_no_workers(exc)
            return None
        # Only the worker keeps its end: the parent's copy would hide the worker's exit.
        child_end.close()
        worker = _Worker(process, parent_end)
        assert self._selector is not None
        self._selector.register(parent_end, selectors.EVENT_READ, worker)
        self._selector.register(process.sentinel, selectors.EVENT_READ, (worker,))
        return worker

    def _fail_queue_if_no_workers(self, exc: BaseException) -> None:
        with self._lock:
            if self._workers:
                return
            failed = list(self._queue)
            self._queue.clear()
        for instance in failed:
            instance.end_rest(exc, None)
            self._host.finish(instance, instance.events)

    def _on_message(self, worker: _Worker) -> bool:
        """A worker's answer: the events of the run it was at (or its failure to load
        the job). False when there was none: the worker's pipe is closed."""
        if worker.conn.closed:  # (reaped earlier in the same batch of ready pipes)
            return False
        try:
            message = ForkingPickler.loads(worker.conn.recv_bytes())
        except (EOFError, OSError):
            self._unregister(worker.conn)  # it ended: its sentinel says so
            return False
        except Exception as exc:  # a result that cannot be unpickled here
            message = RuntimeError(f"the run's result cannot be read from the worker: {exc!r}")
        finished: Instance | None = None
        sends: list[tuple[_Worker, Instance]] = []
        with self._lock:
            instance = worker.instance
            if instance is None or worker.stopped:
                return True  # a late answer for a run stopped already
            now = _clock()
            if isinstance(message, BaseException):
                instance.end_rest(message, None)
            else:
                instance.events.extend(message)
                instance.done += 1
            if instance.done < len(instance.run_times):
                worker.began = now  # the next run time begins
                worker.deadline = now + instance.timeout if instance.timeout else None
            else:
                finished = instance
                worker.instance = None
                worker.deadline = None
                self._idle.append(worker)
                sends = self._dispatch()
        # The next instance goes out before this one's events: the worker waits less.
        for target, queued in sends:
            self._send(target, queued)
        if finished is not None:
            self._host.finish(finished, finished.events)
        return True

    def _on_exit(self, worker: _Worker) -> None:
        """A worker process ended: reap it; if the pool did not terminate it, it died on
        its own, and the run it was at (and the rest of its instance) failed."""
        while not worker.stopped and _readable(worker.conn):
            if not self._on_message(worker):  # what it sent before it died
                break
        self._unregister(worker.process.sentinel)
        self._unregister(worker.conn)
        worker.process.join()
        worker.conn.close()
        code = worker.process.exitcode
        with self._lock:
            if worker.stopped:
                if worker in self._dying:
                    self._dying.remove(worker)
                return
            self._forget(worker)
            instance, worker.instance = worker.instance, None
            if instance is None:
                # Dead while idle (e.g. a spawned worker that cannot import the main
                # module): the pool grows back on demand, instead of restarting one
                # that dies at once in a loop.
                self._size = max(self._size - 1, 0)
            else:
                error = BrokenProcessPool(
                    f"the worker process running task {instance.task_id!r} died (exit code {code})"
                )
                instance.end_rest(error, _clock() - worker.began)
        self._host.logger.error(
            "worker process %s died (exit code %s)%s; rebuilding the process pool with a "
            "new worker in its place when one is needed",
            worker.process.pid,
            code,
            "" if instance is None else f" running task {instance.task_id!r}",
        )
        if instance is not None:
            self._host.finish(instance, instance.events)

    def _on_deadlines(self) -> None:
        """Terminate the workers whose run went past its timeout, and kill the
        terminated ones that outlived their grace period."""
        now = _clock()
        ended: list[Instance] = []
        with self._lock:
            for worker in self._dying:
                if worker.kill_at is not None and worker.kill_at <= now:
                    worker.process.kill()
                    worker.kill_at = None
            for worker in list(self._workers):
                instance = worker.instance
                if instance is None or worker.deadline is None or worker.deadline > now:
                    continue
                self._time_out(worker, instance, now)
                if instance.done < len(instance.run_times):
                    # Its later run times still run, each with its own timeout, on
                    # the next idle worker (the new one, unless another is idle first).
                    self._queue.appendleft(instance)
                else:
                    ended.append(instance)
            sends = self._dispatch()
        for target, queued in sends:
            self._send(target, queued)
        for instance in ended:
            self._host.finish(instance, instance.events)

    def _time_out(self, worker: _Worker, instance: Instance, now: float) -> None:
        """End the worker's run with ``TASK_TIMEOUT`` and terminate it (lock held)."""
        assert instance.timeout is not None
        exc = RunTimeoutError(instance.task_id, instance.timeout)
        run_time = instance.run_times[instance.done]
        instance.events.append(
            _error_event(instance.task_id, instance.store, run_time, exc, now - worker.began)
        )
        instance.done += 1
        self._terminate(worker, f"its run of task {instance.task_id!r} timed out")

    def _stop_workers(self) -> None:
        """Tell the idle workers to end, and reap every worker (the busy ones are killed
        after GRACE)."""
        with self._lock:
            workers = self._workers + self._dying
            self._workers, self._idle, self._dying = [], [], []
        stop = ForkingPickler.dumps(None)
        for worker in workers:
            if not worker.stopped:
                with contextlib.suppress(OSError):
                    worker.conn.send_bytes(stop)
        for worker in workers:
            worker.process.join(GRACE)
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join()
            worker.conn.close()

    # -- shared by both sides --------------------------------------------------------------

    def _assign(self, worker: _Worker, instance: Instance) -> None:
        """Give the (idle) worker the instance (lock held)."""
        worker.instance = instance
        worker.began = _clock()
        worker.deadline = worker.began + instance.timeout if instance.timeout else None

    def _dispatch(self) -> list[tuple[_Worker, Instance]]:
        """Pair queued instances with idle workers (lock held); the caller sends them
        after releasing the lock."""
        sends = []
        while self._queue and self._idle:
            worker = self._idle.pop()
            instance = self._queue.popleft()
            self._assign(worker, instance)
            sends.append((worker, instance))
        return sends

    def _send(self, worker: _Worker, instance: Instance) -> None:
        """Send the worker its instance (lock not held: pickling and a pipe write)."""
        try:
            worker.conn.send_bytes(instance.payload())
        except OSError:
            # The worker is gone (its sentinel tells the manager); the instance never
            # reached it: it waits for the next worker.
            with self._lock:
                if worker.instance is instance:
                    worker.instance = None
                    worker.deadline = None
                    self._queue.appendleft(instance)
        except Exception as exc:  # (a resumed instance that no longer pickles)
            with self._lock:
                if worker.instance is not instance:
                    return
                worker.instance = None
                worker.deadline = None
                self._idle.append(worker)
                instance.end_rest(exc, None)
            self._host.finish(instance, instance.events)

    def _terminate(self, worker: _Worker, why: str) -> None:
        """SIGTERM the worker (lock held); the manager kills it after GRACE, reaps it and
        starts another in its place."""
        self._forget(worker)
        worker.instance = None
        worker.deadline = None
        worker.stopped = True
        worker.kill_at = _clock() + GRACE
        self._dying.append(worker)
        worker.process.terminate()
        self._host.logger.warning(
            "terminated worker process %s (%s); a new worker takes its place",
            worker.process.pid,
            why,
        )
        self._wake()

    def _forget(self, worker: _Worker) -> None:
        """Take the worker out of the live ones (lock held)."""
        if worker in self._workers:
            self._workers.remove(worker)
        if worker in self._idle:
            self._idle.remove(worker)

    def _unregister(self, fileobj: Any) -> None:
        assert self._selector is not None
        with contextlib.suppress(KeyError, ValueError, OSError):  # (not registered)
            self._selector.unregister(fileobj)

    # -- exit and fork ---------------------------------------------------------------------

    def abandon(self, why: str) -> None:
        """Take no more instances, terminate the busy workers, and end every instance
        that has not ended with a ``BrokenProcessPool`` error saying ``why``."""
        error = BrokenProcessPool(why)
        with self._lock:
            self._closing = True
            ended = list(self._queue)
            self._queue.clear()
            for instance in ended:
                instance.end_rest(error, None)
            now = _clock()
            for worker in list(self._workers):
                running = worker.instance
                if running is not None:
                    running.end_rest(error, now - worker.began)
                    ended.append(running)
                    self._terminate(worker, why)
        for instance in ended:
            with contextlib.suppress(Exception):  # (at interpreter exit, listeners may be gone)
                self._host.finish(instance, instance.events)

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's workers and manager are not this process's.
        Close this process's copies of their pipes (a worker sees its parent end only
        when every copy of the parent's end is closed)."""
        self._lock = threading.Lock()  # (a parent thread may have held it)
        for worker in self._workers + self._dying:
            worker.conn.close()
        if self._wake_fds is not None:
            for fd in self._wake_fds:
                os.close(fd)
        if self._selector is not None:
            self._selector.close()
        self._workers, self._idle, self._dying, self._queue = [], [], [], deque()
        self._wake_fds = self._selector = self._thread = None
        self._size = 0


def _readable(conn: Connection) -> bool:
    try:
        return conn.poll()
    except (EOFError, OSError):
        return False


#: Every pool, for the interpreter-exit and after-fork hooks.
_pools: weakref.WeakSet[ProcessPool] = weakref.WeakSet()


def _at_exit() -> None:
    """Terminate the workers still running at interpreter exit (a pool shut down with
    ``wait=False`` while a run hangs): registered after multiprocessing's own exit hook,
    so it runs first, and multiprocessing's join of its child processes returns."""
    for pool in list(_pools):
        if pool._workers or pool._queue or pool._dying:
            pool.abandon("run stopped: the interpreter is exiting")
            thread = pool._thread
            if thread is not None and thread.is_alive():
                thread.join(GRACE + 1)  # it stops and reaps the workers now
            else:
                pool._stop_workers()


atexit.register(_at_exit)


def _after_fork_in_child() -> None:
    for pool in list(_pools):
        pool.forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
