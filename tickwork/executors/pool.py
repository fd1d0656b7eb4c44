"""Run tasks in a pool of threads or of processes."""

from __future__ import annotations

import concurrent.futures
import threading
from abc import abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from tickwork.events import TASK_EXECUTED
from tickwork.exceptions import ConfigurationError
from tickwork.executors._workers import ThreadWorkers
from tickwork.executors.base import BaseExecutor, ExecutorHost, _log_end, _log_start, run_task
from tickwork.tasks import Task

__all__ = ["ProcessPoolExecutor", "ThreadPoolExecutor"]


class _Pool(Protocol):
    """What the executors use of a pool: :class:`ThreadWorkers` or a
    :class:`concurrent.futures.Executor`."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> object: ...

    def shutdown(self, wait: bool = True) -> None: ...


class _PoolExecutor(BaseExecutor):
    """Shared logic of the thread and process pools: start, submit, shut down."""

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        if max_workers is not None and (isinstance(max_workers, bool) or max_workers < 1):
            raise ConfigurationError(f"max_workers must be a positive integer, got {max_workers!r}")
        self.max_workers = max_workers
        self._pool: _Pool | None = None

    @abstractmethod
    def _make_pool(self) -> _Pool:
        """Create the backend pool (called at start, and again after a pool breaks)."""

    def start(self, host: ExecutorHost, alias: str) -> None:
        """Create the pool."""
        super().start(host, alias)
        self._pool = self._make_pool()

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
        return isinstance(pool, ThreadWorkers) and pool.owns_current_thread()

    def shutdown(self, wait: bool = True) -> None:
        """Refuse new runs and shut the pool down; ``wait`` lets active and queued runs
        finish first."""
        self._stop_accepting()
        if self._pool is not None:
            self._pool.shutdown(wait=wait)


class ThreadPoolExecutor(_PoolExecutor):
    """Run each instance in a pool of ``max_workers`` threads (default 10).

    ``async def`` tasks run too, each on an event loop of its own in its thread.
    """

    def __init__(self, max_workers: int | None = 10) -> None:
        super().__init__(max_workers)

    def _make_pool(self) -> _Pool:
        return ThreadWorkers(self.max_workers, thread_name_prefix=f"tickwork-{self.alias}")


class ProcessPoolExecutor(_PoolExecutor):
    """Run each instance in a pool of worker processes, for CPU-bound tasks.

    The task's function, arguments and return value must be picklable; functions are
    pickled by reference, so they must be importable at module level. If a worker dies
    (killed, segfault), its runs are reported as ``TASK_ERROR`` and the pool is rebuilt.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers)
        self._rebuild_lock = threading.Lock()

    def _make_pool(self) -> _Pool:
        return concurrent.futures.ProcessPoolExecutor(self.max_workers)

    def do_send_task(self, task: Task, run_times: list[datetime]) -> None:
        """Submit the instance; its events come back from the worker process."""
        pool = self._pool
        if not isinstance(pool, concurrent.futures.ProcessPoolExecutor):
            raise ConfigurationError(f"executor {self.alias!r} is not started")
        task_id, store = task.id, task.store_alias
        # The worker process does not log (its logging is not this process's, and under
        # the spawn start method it has none): the runs' lines are written here, the
        # start when the instance goes to the pool, the ends with the durations the
        # worker measured (carried by the events).
        log = self._debug_logger()
        if log is not None:
            for run_time in run_times:
                _log_start(log, task_id, run_time, " (sent to a worker process)")
        future = pool.submit(run_task, task_id, store, task.fn, task.args, task.kwargs, run_times)

        def finished(done: concurrent.futures.Future[Any]) -> None:
            exc = done.exception()
            if exc is not None:
                self._on_pool_failure(pool, exc)
                self._run_crashed(task_id, store, run_times, exc)
                return
            events = done.result()
            end_log = self._debug_logger()
            if end_log is not None:
                for event in events:
                    if event.code == TASK_EXECUTED and event.duration is not None:
                        _log_end(end_log, task_id, event.scheduled_run_time, event.duration)
            self._run_finished(task_id, events)

        future.add_done_callback(finished)

    def _on_pool_failure(self, broken: _Pool, exc: BaseException) -> None:
        """Rebuild the pool when a worker process died (the task raising is no failure).

        Every run queued in a broken pool fails with it: the first failure rebuilds the
        pool, the others find it rebuilt already (``broken`` is no longer the pool)."""
        if not isinstance(exc, concurrent.futures.process.BrokenProcessPool):
            return
        with self._rebuild_lock:
            if self._pool is not broken or self._shut_down:
                return
            self.logger.error("a worker process died; rebuilding the process pool")
            self._pool = self._make_pool()
        broken.shutdown(wait=False)
