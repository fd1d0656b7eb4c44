"""A task that shuts its own scheduler down: ``wait=True`` cannot wait for the run that
asks, so the shutdown returns to it, goes on by itself, waits for that run (and the
others) to finish, runs the shutdown tasks and stops; it never hangs."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from scheduler_helpers import Harness, wait_until

from tickwork.events import TASK_ERROR
from tickwork.schedulers import NativeAsyncIOScheduler


@pytest.mark.parametrize("body", ["sync", "coroutine"])
async def test_a_task_shuts_its_own_scheduler_down(harness: Harness, body: str) -> None:
    if body == "coroutine" and harness.kind == "background":
        pytest.skip("the background scheduler runs coroutines in threads: the sync case")
    if body == "sync" and harness.kind == "native":
        pytest.skip("NativeAsyncIOScheduler.shutdown is a coroutine: the coroutine case")
    scheduler = await harness.started()
    log: list[str] = []
    returned = threading.Event()

    def stop_sync() -> None:
        scheduler.shutdown(wait=True)  # type: ignore[attr-defined]
        log.append("shutdown returned to the task")
        time.sleep(0.2)  # the rest of the shutdown must wait for this
        log.append("task finished")
        returned.set()

    async def stop_async() -> None:
        if isinstance(scheduler, NativeAsyncIOScheduler):
            await scheduler.shutdown(wait=True)
        else:
            await scheduler.shutdown_async(wait=True)  # type: ignore[attr-defined]
        log.append("shutdown returned to the task")
        await asyncio.sleep(0.2)
        log.append("task finished")
        returned.set()

    def cleanup() -> None:
        log.append("shutdown task")

    scheduler.add_task(cleanup, "shutdown")
    scheduler.add_task(stop_sync if body == "sync" else stop_async)
    await wait_until(returned.is_set, timeout=10)
    await wait_until(lambda: not scheduler.running and "shutdown task" in log, timeout=10)
    assert log == ["shutdown returned to the task", "task finished", "shutdown task"]
    assert harness.codes(TASK_ERROR) == []
