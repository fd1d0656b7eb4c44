"""Run events are built only for listeners that want them; errors are always logged.

Executors ask the scheduler's ``wants(code)`` when a run ends, so a ``TASK_EXECUTED``
listener registered while tasks are already running still gets every later result.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import executor_jobs as jobs
import pytest
from executor_host import T0, task

from tickwork.events import TASK_ERROR, TASK_EXECUTED, TaskExecutionEvent
from tickwork.executors import AsyncIOExecutor, BaseExecutor, ThreadPoolExecutor
from tickwork.schedulers import AsyncIOScheduler


class ListeningHost:
    """A scheduler double with a listener mask, like the real one."""

    def __init__(self, loop: asyncio.AbstractEventLoop, mask: int) -> None:
        self.event_loop = loop
        self.event_loop_thread_id = threading.get_ident()
        self.mask = mask
        self.events: list[TaskExecutionEvent] = []
        self.asked: list[int] = []

    def wants(self, code: int) -> bool:
        self.asked.append(code)
        return bool(self.mask & code)

    def emit(self, event: TaskExecutionEvent) -> None:
        self.events.append(event)


@pytest.fixture(params=["asyncio", "threadpool"])
async def executor_and_host(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[BaseExecutor, ListeningHost]]:
    host = ListeningHost(asyncio.get_running_loop(), mask=0)
    executor: BaseExecutor = (
        AsyncIOExecutor() if request.param == "asyncio" else ThreadPoolExecutor()
    )
    executor.start(host, "default")  # type: ignore[arg-type]
    yield executor, host
    await executor.shutdown_async(wait=True)


async def idle(executor: BaseExecutor, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while executor.active_instances("t") or executor.active_instances("u"):
        assert time.monotonic() < deadline, "the runs never finished"
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("fn", [jobs.add, jobs.async_add])
async def test_no_listener_no_executed_event_and_the_slot_is_released(
    executor_and_host: tuple[BaseExecutor, ListeningHost], fn: Any
) -> None:
    executor, host = executor_and_host
    executor.send_task(task(fn, 1, 2), [T0])
    await idle(executor)
    assert host.events == []
    assert TASK_EXECUTED in host.asked, "asked when the run ended"


@pytest.mark.parametrize("fn", [jobs.add, jobs.async_add])
async def test_a_listener_that_appears_later_gets_the_later_results(
    executor_and_host: tuple[BaseExecutor, ListeningHost], fn: Any
) -> None:
    executor, host = executor_and_host
    executor.send_task(task(fn, 1, 2), [T0])
    await idle(executor)
    host.mask = TASK_EXECUTED
    executor.send_task(task(fn, 3, 4), [T0, T0])
    await idle(executor)
    assert [(e.code, e.return_value) for e in host.events] == [(TASK_EXECUTED, 7)] * 2


@pytest.mark.parametrize("fn", [jobs.fail])
async def test_errors_are_logged_and_reported_even_without_a_listener(
    executor_and_host: tuple[BaseExecutor, ListeningHost],
    fn: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    executor, host = executor_and_host
    with caplog.at_level(logging.ERROR, logger="tickwork.executors"):
        executor.send_task(task(fn, "broken on purpose"), [T0])
        await idle(executor)
    assert "broken on purpose" in caplog.text
    (event,) = host.events  # dispatched anyway: the scheduler drops it if unwanted
    assert event.code == TASK_ERROR


async def test_a_failing_coroutine_is_logged_without_a_listener(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> None:
        raise ValueError("coroutine broken on purpose")

    host = ListeningHost(asyncio.get_running_loop(), mask=0)
    executor = AsyncIOExecutor()
    executor.start(host, "default")  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="tickwork.executors"):
        executor.send_task(task(broken), [T0])
        await idle(executor)
    await executor.shutdown_async()
    assert "coroutine broken on purpose" in caplog.text
    assert [e.code for e in host.events] == [TASK_ERROR]


async def test_a_cancelled_coroutine_run_is_reported_and_releases_its_slot() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    host = ListeningHost(asyncio.get_running_loop(), mask=0)
    executor = AsyncIOExecutor()
    executor.start(host, "default")  # type: ignore[arg-type]
    executor.send_task(task(forever), [T0])
    await started.wait()
    (run,) = executor._pending.values()
    run.cancel()
    await idle(executor)
    await executor.shutdown_async()
    (event,) = host.events
    assert event.code == TASK_ERROR
    assert isinstance(event.exception, asyncio.CancelledError)
    assert run.cancelled()


async def test_a_coroutine_task_runs_in_its_own_asyncio_task() -> None:
    seen: list[object] = []

    async def body() -> str:
        seen.append(asyncio.current_task())
        async with asyncio.timeout(5):  # needs a current task
            await asyncio.sleep(0)
        return "ok"

    host = ListeningHost(asyncio.get_running_loop(), mask=TASK_EXECUTED)
    executor = AsyncIOExecutor()
    executor.start(host, "default")  # type: ignore[arg-type]
    executor.send_task(task(body), [T0])
    executor.send_task(task(body, id="u"), [T0])
    await idle(executor)
    await executor.shutdown_async()
    assert [e.return_value for e in host.events] == ["ok", "ok"]
    assert None not in seen
    assert seen[0] is not seen[1]
    assert seen[0] is not asyncio.current_task()


async def test_a_scheduler_listener_added_after_start_gets_return_values() -> None:
    results: list[object] = []

    async def answer() -> int:
        return 42

    def plain_answer() -> int:
        return 43

    scheduler = AsyncIOScheduler()
    scheduler.start()
    try:
        scheduler.add_task(answer, "date", run_at=datetime.now(UTC))
        await asyncio.sleep(0.2)  # ran, unobserved
        scheduler.add_listener(lambda e: results.append(e.return_value), TASK_EXECUTED)
        scheduler.add_task(answer, "date", run_at=datetime.now(UTC))
        scheduler.add_task(plain_answer, "date", run_at=datetime.now(UTC))
        deadline = time.monotonic() + 5
        while len(results) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        await scheduler.shutdown_async()
    assert sorted(results) == [42, 43]  # type: ignore[type-var]
