"""Run tasks in a pool of threads or of processes."""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from tickwork.events import TASK_EXECUTED, TaskExecutionEvent
from tickwork.exceptions import ConfigurationError
from tickwork.executors._processes import Instance, ProcessPool
from tickwork.executors._workers import ThreadWorkers
from tickwork.executors.base import BaseExecutor, ExecutorHost, _log_end, _log_start
from tickwork.tasks import Task

__all__ = ["ProcessPoolExecutor", "ThreadPoolExecutor"]


class _Pool(Protocol):
    """What the executors use of a pool: :class:`ThreadWorkers` or a
    :class:`~tickwork.executors._processes.ProcessPool`."""

    def shutdown(self, wait: bool = True) -> None: ...

    def free(self) -> int: ...


_P = TypeVar("_P", bound=_Pool)


class _PoolExecutor(BaseExecutor, Generic[_P]):
    """Shared logic of the thread and process pools: start, shut down."""

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        if max_workers is not None and (isinstance(max_workers, bool) or max_workers < 1):
            raise ConfigurationError(f"max_workers must be a positive integer, got {max_workers!r}")
        self.max_workers = max_workers
        self._pool: _P | None = None
        #: The watch_workers callback (None: not watched).
        self._on_free: Callable[[], None] | None = None

    @abstractmethod
    def _make_pool(self) -> _P:
        """Create the backend pool (called at start)."""

    def start(self, host: ExecutorHost, alias: str) -> None:
        """Create the pool."""
        super().start(host, alias)
        self._pool = self._make_pool()

    def shutdown(self, wait: bool = True) -> None:
        """Refuse new runs and shut the pool down; ``wait`` lets active and queued runs
        finish first."""
        self._stop_accepting()
        if self._pool is not None:
            self._pool.shutdown(wait=wait)

    def free_workers(self, task: Task) -> int | None:
        """How many more instances would start on a worker at once now (see
        :class:`~tickwork.executors.base.WorkerCapacity`); ``None`` before start."""
        pool = self._pool
        return None if pool is None else pool.free()

    def watch_workers(self, callback: Callable[[], None] | None) -> None:
        """See :class:`~tickwork.executors.base.WorkerCapacity`."""
        self._on_free = callback


class ThreadPoolExecutor(_PoolExecutor[ThreadWorkers]):
    """Run each instance in a pool of ``max_workers`` threads (default 10).

    ``async def`` tasks run too, each on an event loop of its own in its thread.
    """

    def __init__(self, max_workers: int | None = 10) -> None:
        super().__init__(max_workers)

    def _make_pool(self) -> ThreadWorkers:
        pool = ThreadWorkers(self.max_workers, thread_name_prefix=f"tickwork-{self.alias}")
        pool.on_free = self._on_free
        return pool

    def watch_workers(self, callback: Callable[[], None] | None) -> None:
        """See :class:`~tickwork.executors.base.WorkerCapacity`: the pool's workers call
        ``callback`` as they free."""
        self._on_free = callback
        if self._pool is not None:
            self._pool.on_free = callback

    def do_send_task(self, task: Task, run_times: list[datetime]) -> None:
        """Submit the instance; the worker thread finishes it itself (no future callback
        to hop through, no event built that no listener wants)."""
        if self._pool is None:
            raise ConfigurationError(f"executor {self.alias!r} is not started")
        profile = task._profile  # (not the properties: this runs per run)
        self._pool.submit(
            self._execute,
            task.id,
            task.store_alias,
            profile.fn,
            task.args,
            task.kwargs,
            run_times,
            profile.policy.timeout,
        )

    def runs_caller(self) -> bool:
        """True when called from one of the pool's threads (see
        :meth:`BaseExecutor.runs_caller`)."""
        pool = self._pool
        return pool is not None and pool.owns_current_thread()


class ProcessPoolExecutor(_PoolExecutor[ProcessPool]):
    """Run each instance in a pool of ``max_workers`` worker processes (default: one per
    CPU), for CPU-bound tasks.

    The task's function, arguments and return value must be picklable; functions are
    pickled by reference, so they must be importable at module level.

    A run past its task's ``timeout`` has its worker process terminated (SIGTERM, then
    SIGKILL a second later) and ends ``TASK_TIMEOUT``; the instance's later run times
    still run, each with its own timeout, and a new worker takes the old one's place.
    :meth:`cancel_run` terminates the worker the same way. A worker that dies on its own
    (killed, segfault, ``os._exit``) fails only the instance it was running
    (``TASK_ERROR``, a ``BrokenProcessPool`` naming its exit code) and is replaced; the
    other workers go on. See :mod:`tickwork.executors._processes`.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers)

    def _make_pool(self) -> ProcessPool:
        workers = self.max_workers or os.cpu_count() or 1
        return ProcessPool(workers, self, f"tickwork-{self.alias}")

    def do_send_task(self, task: Task, run_times: list[datetime]) -> None:
        """Submit the instance; its events come back from the worker process."""
        pool = self._pool
        if pool is None:
            raise ConfigurationError(f"executor {self.alias!r} is not started")
        task_id, profile = task.id, task._profile  # (not the properties: this runs per run)
        # The worker process does not log (its logging is not this process's, and under
        # the spawn start method it has none): the runs' lines are written here, the
        # start when the instance goes to the pool, the ends with the durations the
        # worker measured (carried by the events).
        log = self._debug_logger()
        if log is not None:
            for run_time in run_times:
                _log_start(log, task_id, run_time, " (sent to a worker process)")
        timeout = profile.policy.timeout or None  # (UNSET, falsy, on a task no scheduler
        # filled in: no limit)
        pool.submit(
            Instance(
                task_id, task.store_alias, profile.fn, task.args, task.kwargs, run_times, timeout
            )
        )

    def finish(self, instance: Instance, events: list[TaskExecutionEvent]) -> None:
        """The pool is done with an instance (see :class:`~tickwork.executors._processes.
        PoolHost`): log the successful runs' ends, and report every run."""
        log = self._debug_logger()
        if log is not None:
            for event in events:
                if event.code == TASK_EXECUTED and event.duration is not None:
                    _log_end(log, instance.task_id, event.scheduled_run_time, event.duration)
        self._run_finished(instance.task_id, events)
        # (The pool has counted the instance's worker free, or given it the next queued
        # instance, before it calls finish: see ProcessPool.free.)
        on_free = self._on_free
        if on_free is not None:
            try:
                on_free()
            except Exception:  # (a watcher's bug must not stop the pool's manager)
                self.logger.exception("the free-worker callback raised")

    def cancel_run(self, task_id: str, run_time: datetime | None, reason: str) -> int:
        """Terminate the worker running ``task_id``'s instance holding ``run_time`` (every
        instance of the task when ``None``), and drop such instances still queued; a new
        worker takes a terminated one's place. Returns how many instances were cancelled
        (see :meth:`BaseExecutor.cancel_run`)."""
        pool = self._pool
        return 0 if pool is None else pool.cancel(task_id, run_time, reason)

    def cancel_active(self, reason: str) -> None:
        """Terminate every busy worker and drop the queued instances: their runs end
        ``TASK_CANCELLED`` saying ``reason`` (see :meth:`BaseExecutor.cancel_active`)."""
        pool = self._pool
        if pool is not None:
            pool.cancel(None, None, reason)

    def _reset_after_fork(self) -> None:
        """In a forked child, the parent's workers are not this process's: a started
        executor gets a pool of its own (its workers start when it first runs a task)."""
        super()._reset_after_fork()
        if self._pool is not None:
            self._pool.forget_after_fork()
