"""WorkerCapacity (tickwork/executors/base.py): how many workers of an executor are free,
and a callback each time one frees, counted free by then; executors without a bounded
set of workers say ``None``."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import executor_jobs as jobs
import pytest
from executor_host import T0, Host, task

from tickwork.executors import (
    AsyncIOExecutor,
    BaseExecutor,
    DebugExecutor,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)


def hold_until(path: str) -> str:
    """Hold the worker (a thread or a process) until the file ``path`` exists."""
    deadline = time.monotonic() + 20
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.005)
    return path


def open_gate(path: str) -> None:
    Path(path).touch()


BOUNDED: dict[str, Callable[[], BaseExecutor]] = {
    "threadpool": lambda: ThreadPoolExecutor(max_workers=2),
    "processpool": lambda: ProcessPoolExecutor(max_workers=2),
    "asyncio": lambda: AsyncIOExecutor(max_workers=2),
}


async def settled(condition: Callable[[], bool], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("kind", sorted(BOUNDED))
async def test_free_workers_count_down_and_the_watcher_hears_each_worker_free(
    kind: str, tmp_path: Path
) -> None:
    gate = str(tmp_path / "gate")
    executor: BaseExecutor = BOUNDED[kind]()
    executor.start(Host(asyncio.get_running_loop()), "default")
    held = task(hold_until, gate, max_instances=5)
    seen: list[int | None] = []
    lock = threading.Lock()

    def freed() -> None:
        with lock:
            seen.append(executor.free_workers(held))

    try:
        assert executor.free_workers(held) == 2
        executor.watch_workers(freed)
        executor.send_task(held, [T0])
        assert executor.free_workers(held) == 1
        executor.send_task(held, [T0])
        assert executor.free_workers(held) == 0
        executor.send_task(held, [T0])  # waits inside the executor: none more is free
        assert executor.free_workers(held) == 0
        open_gate(gate)
        await settled(lambda: len(seen) == 3)
        # Told once per worker freed, each time with the worker counted free already;
        # the worker that took the waiting run was not free for anyone else.
        await settled(lambda: executor.free_workers(held) == 2)
        assert seen[-1] == 2
        assert all(count is not None and count <= 2 for count in seen)
        executor.watch_workers(None)
        executor.send_task(held, [T0])
        await settled(lambda: executor.active_instances("t") == 0)
        assert len(seen) == 3  # no longer watched
    finally:
        open_gate(gate)
        await executor.shutdown_async(wait=True)


async def test_runs_that_need_no_bounded_worker_are_unbounded() -> None:
    loop = asyncio.get_running_loop()
    debug = DebugExecutor()
    debug.start(Host(loop), "debug")
    asyncio_executor = AsyncIOExecutor(max_workers=1)
    asyncio_executor.start(Host(loop), "default")
    try:
        assert debug.free_workers(task(jobs.add, 1, 2)) is None
        debug.watch_workers(lambda: None)  # nothing to watch: accepted, never called
        # Coroutines run on the loop, any number at once; plain functions take threads.
        assert asyncio_executor.free_workers(task(jobs.async_add, 1, 2)) is None
        assert asyncio_executor.free_workers(task(jobs.add, 1, 2)) == 1
    finally:
        debug.shutdown()
        await asyncio_executor.shutdown_async()
