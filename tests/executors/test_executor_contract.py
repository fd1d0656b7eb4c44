"""The executor contract (see tickwork.executors.base), run against every executor."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import executor_jobs as jobs
import pytest
from executor_host import T0, Host, make, task

from tickwork.events import TASK_ERROR, TASK_EXECUTED, TaskExecutionEvent
from tickwork.exceptions import MaxInstancesReachedError
from tickwork.executors import (
    BaseExecutor,
    DebugExecutor,
    ProcessPoolExecutor,
)


@pytest.fixture(params=["asyncio", "threadpool", "processpool", "debug"])
async def setup(request: pytest.FixtureRequest) -> AsyncIterator[tuple[BaseExecutor, Host]]:
    host = Host(asyncio.get_running_loop())
    executor = make(request.param)
    executor.start(host, "default")  # type: ignore[arg-type]
    yield executor, host
    await executor.shutdown_async(wait=True)


async def events_for(host: Host, count: int, timeout: float = 10) -> list[TaskExecutionEvent]:
    deadline = time.monotonic() + timeout
    while len(host.events) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} events, got {host.events}")
        await asyncio.sleep(0.005)
    return host.events


async def test_runs_a_function_and_reports_its_result(setup: tuple[BaseExecutor, Host]) -> None:
    executor, host = setup
    executor.send_task(task(jobs.add, 2, 3), [T0])
    (event,) = await events_for(host, 1)
    assert (event.code, event.task_id, event.return_value, event.scheduled_run_time) == (
        TASK_EXECUTED,
        "t",
        5,
        T0,
    )


async def test_runs_a_coroutine_function(setup: tuple[BaseExecutor, Host]) -> None:
    executor, host = setup
    executor.send_task(task(jobs.async_add, 4, 5), [T0])
    (event,) = await events_for(host, 1)
    assert (event.code, event.return_value) == (TASK_EXECUTED, 9)


async def test_an_exception_is_reported_with_its_traceback(
    setup: tuple[BaseExecutor, Host],
) -> None:
    executor, host = setup
    executor.send_task(task(jobs.fail, "broken on purpose"), [T0])
    (event,) = await events_for(host, 1)
    assert event.code == TASK_ERROR
    assert isinstance(event.exception, ValueError)
    assert "broken on purpose" in (event.traceback or "")
    assert executor.active_instances("t") == 0


async def test_several_run_times_are_one_instance_one_event_each(
    setup: tuple[BaseExecutor, Host],
) -> None:
    executor, host = setup
    times = [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)]
    executor.send_task(task(jobs.add, 1, 1), times)
    events = await events_for(host, 3)
    assert [e.scheduled_run_time for e in events] == times
    assert {e.code for e in events} == {TASK_EXECUTED}


async def test_max_instances_is_enforced_and_released(setup: tuple[BaseExecutor, Host]) -> None:
    executor, host = setup
    if isinstance(executor, DebugExecutor):
        pytest.skip("the debug executor finishes each run inside send_task")
    slow = task(jobs.sleep_then_return, 0.3, "x", max_instances=2)
    executor.send_task(slow, [T0])
    executor.send_task(slow, [T0])
    with pytest.raises(MaxInstancesReachedError, match="'t'"):
        executor.send_task(slow, [T0])
    await events_for(host, 2)
    await asyncio.sleep(0.01)
    assert executor.active_instances("t") == 0
    executor.send_task(slow, [T0])  # slots are free again
    await events_for(host, 3)


async def test_shutdown_with_wait_lets_active_runs_finish(setup: tuple[BaseExecutor, Host]) -> None:
    executor, host = setup
    if isinstance(executor, DebugExecutor):
        pytest.skip("the debug executor has nothing active after send_task")
    executor.send_task(task(jobs.async_sleep_then_return, 0.3, "coroutine", id="a"), [T0])
    executor.send_task(task(jobs.sleep_then_return, 0.3, "function", id="b"), [T0])
    await asyncio.sleep(0.05)
    await executor.shutdown_async(wait=True)
    assert sorted(e.return_value for e in host.events) == ["coroutine", "function"]
    assert {e.code for e in host.events} == {TASK_EXECUTED}


async def test_sync_shutdown_from_another_thread_waits_too(
    setup: tuple[BaseExecutor, Host],
) -> None:
    executor, host = setup
    if isinstance(executor, DebugExecutor):
        pytest.skip("the debug executor has nothing active after send_task")
    executor.send_task(task(jobs.async_sleep_then_return, 0.2, "done"), [T0])
    await asyncio.sleep(0.05)
    await asyncio.to_thread(executor.shutdown, True)
    assert [e.return_value for e in host.events] == ["done"]


async def test_process_pool_survives_a_dead_worker() -> None:
    host = Host(asyncio.get_running_loop())
    executor = ProcessPoolExecutor(max_workers=1)
    executor.start(host, "default")  # type: ignore[arg-type]
    try:
        executor.send_task(task(jobs.kill_own_process, id="killer"), [T0])
        (crash,) = await events_for(host, 1)
        assert crash.code == TASK_ERROR
        assert crash.task_id == "killer"
        executor.send_task(task(jobs.add, 20, 22, id="after"), [T0])
        events = await events_for(host, 2)
        assert (events[1].task_id, events[1].return_value) == ("after", 42)
    finally:
        await executor.shutdown_async(wait=True)


async def test_process_pool_is_rebuilt_once_for_all_the_runs_a_dead_worker_took_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = Host(asyncio.get_running_loop())
    executor = ProcessPoolExecutor(max_workers=1)
    executor.start(host, "default")  # type: ignore[arg-type]
    try:
        # the killer first, then runs queued behind it in the same pool: they all fail
        # with it (BrokenProcessPool), and the pool is rebuilt once, not once per run
        executor.send_task(task(jobs.kill_own_process, id="killer"), [T0])
        for index in range(4):
            executor.send_task(task(jobs.sleep_then_return, 0.2, index, id=f"q{index}"), [T0])
        events = await events_for(host, 5)
        assert {e.task_id for e in events} == {"killer", "q0", "q1", "q2", "q3"}
        assert caplog.text.count("rebuilding the process pool") == 1
        executor.send_task(task(jobs.add, 20, 22, id="after"), [T0])
        events = await events_for(host, 6)
        assert (events[-1].task_id, events[-1].return_value) == ("after", 42)
    finally:
        await executor.shutdown_async(wait=True)


async def test_wait_until_idle(setup: tuple[BaseExecutor, Host]) -> None:
    executor, host = setup
    assert await executor.wait_until_idle_async(timeout=0.1)
    if isinstance(executor, DebugExecutor):
        return
    executor.send_task(task(jobs.async_sleep_then_return, 0.3, "x"), [T0])
    assert not await executor.wait_until_idle_async(timeout=0.05)
    assert await executor.wait_until_idle_async(timeout=5)
    assert [e.return_value for e in host.events] == ["x"]


async def test_every_execution_event_carries_its_duration_attempt_and_run_id(
    setup: tuple[BaseExecutor, Host],
) -> None:
    executor, host = setup
    executor.send_task(task(jobs.add, 1, 1), [T0])
    executor.send_task(task(jobs.fail, "boom", id="u"), [T0 + timedelta(seconds=1)])
    events = await events_for(host, 2)
    by_task = {event.task_id: event for event in events}
    for event in by_task.values():
        assert event.duration is not None
        assert 0 <= event.duration < 5
        assert event.attempt == 1
    assert by_task["t"].run_id == "t@2026-01-01T00:00:00.000000Z#1"
    assert by_task["u"].code == TASK_ERROR
    assert by_task["u"].run_id == "u@2026-01-01T00:00:01.000000Z#1"
