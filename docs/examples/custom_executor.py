"""Extending: an executor of your own. This one runs every task, one at a time, in a
single worker thread: handy for tasks that must never overlap each other."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from datetime import datetime
from typing import Any

from tickwork import BackgroundScheduler
from tickwork.executors import BaseExecutor, executor_registry
from tickwork.executors.base import ExecutorHost, run_task
from tickwork.tasks import Task


class SerialExecutor(BaseExecutor):
    """Runs each instance in one worker thread, in the order they were sent."""

    def __init__(self) -> None:
        super().__init__()
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None

    def start(self, host: ExecutorHost, alias: str) -> None:
        super().start(host, alias)
        self._worker = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"serial-{alias}"
        )

    def do_send_task(self, task: Task, run_times: list[datetime]) -> None:
        # Must not block on the task. BaseExecutor.send_task has already checked
        # max_instances and counted this instance.
        assert self._worker is not None, "executor not started"
        task_id, store = task.id, task.store_alias
        future = self._worker.submit(
            run_task, task_id, store, task.fn, task.args, task.kwargs, run_times
        )

        def done(future: concurrent.futures.Future[Any]) -> None:
            # Exactly once per instance: release the slot and report each run's event.
            exc = future.exception()
            if exc is not None:  # run_task reports task errors itself; this is a lost run
                self._run_crashed(task_id, store, run_times, exc)
            else:
                self._run_finished(task_id, future.result())

        future.add_done_callback(done)

    def shutdown(self, wait: bool = True) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=wait)  # wait=True lets active runs finish


# Optional: an alias for executors={"serial": {"type": "serial"}}.
executor_registry.register("serial", SerialExecutor)

# -- check it ---------------------------------------------------------------------------

active = 0
overlaps: list[int] = []
lock = threading.Lock()


def write_file(name: str) -> None:
    global active
    with lock:
        active += 1
        overlaps.append(active)
    time.sleep(0.01)
    with lock:
        active -= 1


scheduler = BackgroundScheduler(executors={"serial": {"type": "serial"}})
for name in ("a", "b", "c"):
    scheduler.add_task(write_file, "interval", seconds=0.1, args=[name], executor="serial")
with scheduler:
    time.sleep(0.35)
assert len(overlaps) >= 6
assert max(overlaps) == 1  # never two at once
