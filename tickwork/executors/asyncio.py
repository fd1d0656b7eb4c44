"""Runs tasks on the scheduler's event loop: coroutines as asyncio tasks, plain functions
in a thread pool so they never block the loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from tickwork.exceptions import ConfigurationError
from tickwork.executors.base import BaseExecutor, run_coroutine_task, run_task
from tickwork.tasks import Task

if TYPE_CHECKING:
    from tickwork.schedulers.base import BaseScheduler

__all__ = ["AsyncIOExecutor"]


class AsyncIOExecutor(BaseExecutor):
    """Run ``async def`` tasks as asyncio tasks on the scheduler's loop and plain functions
    in a private thread pool of ``max_workers`` threads (the loop never runs them itself).

    ``shutdown(wait=True)`` waits for active runs and never cancels them.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        self.max_workers = max_workers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: set[asyncio.Future[Any]] = set()

    def start(self, scheduler: BaseScheduler, alias: str) -> None:
        """Bind to the scheduler's event loop."""
        loop = getattr(scheduler, "event_loop", None)
        if loop is None:
            raise ConfigurationError(
                f"executor {alias!r}: AsyncIOExecutor needs an asyncio scheduler "
                f"(got {type(scheduler).__name__}); use ThreadPoolExecutor instead"
            )
        super().start(scheduler, alias)
        self._loop = loop
        self._threads = concurrent.futures.ThreadPoolExecutor(
            self.max_workers, thread_name_prefix=f"tickwork-{alias}"
        )

    def _on_loop_thread(self) -> bool:
        # Read from the scheduler each time: a loop given before it runs gets its thread
        # only once it starts.
        return threading.get_ident() == getattr(self._scheduler, "event_loop_thread_id", None)

    def do_send_task(self, task: Task, run_times: list[datetime]) -> None:
        """Start the instance: a coroutine on the loop (thread-safely when called from
        elsewhere), a plain function straight in the thread pool."""
        assert self._loop is not None, "executor not started"
        assert self._threads is not None, "executor not started"
        task_id, store = task.id, task.store_alias
        if not task.is_coroutine:
            # Submitted and completed without touching the loop: a burst of thousands of
            # sync runs then costs the loop nothing (no per-run callback, no GIL ping-pong).
            future = self._threads.submit(
                run_task, task_id, store, task.fn, task.args, task.kwargs, run_times
            )
            future.add_done_callback(partial(self._finished, task_id, store, run_times))
            return
        job = (task_id, store, task.fn, task.args, task.kwargs, run_times)
        if self._on_loop_thread():
            self._launch(*job)
        else:
            self._loop.call_soon_threadsafe(self._launch, *job)

    def _launch(
        self,
        task_id: str,
        store: str | None,
        fn: Any,
        args: Any,
        kwargs: Any,
        run_times: list[datetime],
    ) -> None:
        assert self._loop is not None
        future = self._loop.create_task(
            run_coroutine_task(task_id, store, fn, args, kwargs, run_times)
        )
        self._pending.add(future)
        future.add_done_callback(partial(self._coroutine_finished, task_id, store, run_times))

    def _coroutine_finished(
        self, task_id: str, store: str | None, run_times: list[datetime], done: asyncio.Future[Any]
    ) -> None:
        # One callback per run rather than two: in a burst the loop runs one per task.
        self._pending.discard(done)
        self._finished(task_id, store, run_times, done)

    def _finished(
        self,
        task_id: str,
        store: str | None,
        run_times: list[datetime],
        done: asyncio.Future[Any] | concurrent.futures.Future[Any],
    ) -> None:
        if done.cancelled():
            self._run_crashed(task_id, store, run_times, asyncio.CancelledError("run cancelled"))
        elif (exc := done.exception()) is not None:
            self._run_crashed(task_id, store, run_times, exc)
        else:
            self._run_finished(task_id, done.result())

    async def shutdown_async(self, wait: bool = True) -> None:
        """Wait (on the loop) for active runs when ``wait``; never cancel them."""
        if wait:
            while self._pending:
                await asyncio.gather(*list(self._pending), return_exceptions=True)
        if self._threads is not None:
            await asyncio.to_thread(self._threads.shutdown, wait)

    def shutdown(self, wait: bool = True) -> None:
        """Stop. From another thread, ``wait`` blocks until active runs are done; on the
        loop's own thread it cannot block, so active runs simply go on to completion."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if wait and not self._on_loop_thread() and loop.is_running():
            asyncio.run_coroutine_threadsafe(self.shutdown_async(True), loop).result()
        elif self._threads is not None:
            # On the loop thread: threads may be joined, coroutines can't be awaited here.
            self._threads.shutdown(wait=wait)
