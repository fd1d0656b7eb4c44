"""Shutdown order: stop dispatching, let running tasks finish (wait=True), run the
shutdown-trigger tasks, stop the executors; a failing executor doesn't stop the rest."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator

import pytest
from scheduler_helpers import Harness, wait_until

from tickwork.events import SCHEDULER_SHUTDOWN, TASK_ERROR
from tickwork.executors import ThreadPoolExecutor
from tickwork.utils import make_function


async def test_lifecycle_cleanup_waits_for_a_running_tick(harness: Harness) -> None:
    log: list[str] = []
    ticking = threading.Event()

    def lifecycle() -> Generator[None, bool, None]:
        log.append("setup")
        while (yield):
            ticking.set()
            time.sleep(0.3)  # the tick is still running when shutdown begins
            log.append("tick")
        log.append("cleanup")

    generator = lifecycle()
    next(generator)
    step = make_function(generator.send)
    scheduler = await harness.started()
    scheduler.add_task(step, "interval", seconds=0.05, args=[True], mistrigger_grace_time=None)
    scheduler.add_task(step, "shutdown", args=[False])
    await wait_until(ticking.is_set)
    await harness.shutdown(scheduler, wait=True)
    await wait_until(lambda: "cleanup" in log)
    assert log[0] == "setup"
    assert log[-1] == "cleanup"
    assert log.count("cleanup") == 1
    assert "tick" in log
    assert harness.codes(TASK_ERROR) == []  # no "generator already executing"


class BrokenShutdownExecutor(ThreadPoolExecutor):
    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)
        raise RuntimeError("executor failed to stop")

    async def shutdown_async(self, wait: bool = True) -> None:
        self.shutdown(wait)


async def test_a_failing_executor_does_not_leave_the_scheduler_half_stopped(
    harness: Harness,
) -> None:
    scheduler = harness.make(executors={"broken": BrokenShutdownExecutor()})
    await harness.start(scheduler)
    with pytest.raises(RuntimeError, match="executor failed to stop"):
        await harness.shutdown(scheduler)  # reported, after everything else was stopped
    assert not scheduler.running
    assert harness.codes(SCHEDULER_SHUTDOWN)
    await harness.start(scheduler)  # and it can start again
    assert scheduler.running
    with pytest.raises(RuntimeError, match="executor failed to stop"):
        await harness.shutdown(scheduler)
