"""Run tasks inline, in the scheduler's own thread: deterministic, for tests and debugging."""

from __future__ import annotations

import asyncio
from datetime import datetime

from tickwork.executors.base import BaseExecutor, run_coroutine_task, run_task
from tickwork.tasks import Task

__all__ = ["DebugExecutor"]


class DebugExecutor(BaseExecutor):
    """Run each instance immediately, inside ``send_task``.

    The run is finished (and its events dispatched) when ``send_task`` returns, which
    makes tests deterministic. Coroutine tasks run as a task on the scheduler's loop when
    called from it, else with :func:`asyncio.run`. Never use it for slow tasks: the
    scheduler waits for each run.
    """

    def do_send_task(self, task: Task, run_times: list[datetime]) -> None:
        """Run the instance now."""
        if not task.is_coroutine:
            self._run_finished(
                task.id,
                run_task(
                    task.id,
                    task.store_alias,
                    task.fn,
                    task.args,
                    task.kwargs,
                    run_times,
                    self.logger,
                ),
            )
            return
        coroutine = run_coroutine_task(
            task.id, task.store_alias, task.fn, task.args, task.kwargs, run_times, self.logger
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._run_finished(task.id, asyncio.run(coroutine))
            return
        future = loop.create_task(coroutine)
        task_id, store = task.id, task.store_alias
        future.add_done_callback(
            lambda done: (
                self._run_finished(task_id, done.result())
                if not done.cancelled() and done.exception() is None
                else self._run_crashed(
                    task_id, store, run_times, done.exception() or asyncio.CancelledError()
                )
            )
        )
