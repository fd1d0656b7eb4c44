"""run_task_now: a run through the task's executor whose caller gets its result or its
error, with the usual events and run record (tickwork/schedulers/_run_now.py)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from scheduler_helpers import Harness, wait_until

from tickwork import BackgroundScheduler
from tickwork.events import TASK_ERROR, TASK_EXECUTED, TASK_RETRY
from tickwork.exceptions import (
    InvalidTaskError,
    MaxInstancesReachedError,
    RunTimeoutError,
    SchedulerNotRunningError,
    TaskLookupError,
)


async def add(a: int, b: int = 0) -> int:
    await asyncio.sleep(0)
    return a + b


def multiply(a: int, b: int) -> int:
    return a * b


def refuse() -> None:
    raise PermissionError("not today")


async def hang() -> None:
    await asyncio.sleep(30)


def block(release: threading.Event) -> None:
    release.wait(10)


async def test_returns_the_result_with_the_tasks_or_the_given_arguments(
    harness: Harness,
) -> None:
    scheduler = await harness.started(timezone="UTC")
    scheduler.add_task(add, "interval", hours=1, args=[1], id="add")
    scheduler.add_task(multiply, "interval", hours=1, args=[2, 3], id="multiply")
    assert await scheduler.run_task_now("add") == 1
    assert await scheduler.run_task_now("add", 5, b=6) == 11
    assert await scheduler.run_task_now("multiply") == 6  # a plain function, in a thread
    executed = harness.codes(TASK_EXECUTED)
    assert sorted(event.return_value for event in executed) == [1, 6, 11]
    # Each its own run, on record; the schedule is untouched.
    assert len({event.run_id for event in executed}) == 3
    await wait_until(lambda: len(scheduler.get_runs(outcome="success")) == 3)
    task = scheduler.get_task("add")
    assert task is not None
    assert task.next_run_time is not None


async def test_raises_the_runs_error_once_without_retries(harness: Harness) -> None:
    scheduler = await harness.started(timezone="UTC")
    scheduler.add_task(refuse, "interval", hours=1, id="refuse", retries=3, retry_delay=0)
    with pytest.raises(PermissionError, match="not today"):
        await scheduler.run_task_now("refuse")
    await asyncio.sleep(0.2)
    assert len(harness.codes(TASK_ERROR)) == 1
    assert harness.codes(TASK_RETRY) == []


async def test_what_refuses_a_run_is_raised_at_once(harness: Harness) -> None:
    scheduler = await harness.started(timezone="UTC")
    with pytest.raises(TaskLookupError):
        await scheduler.run_task_now("nope")
    scheduler.add_task(add, "interval", hours=1, args=[1], id="add")
    with pytest.raises(InvalidTaskError):
        await scheduler.run_task_now("add", 1, 2, 3)  # one argument too many
    release = threading.Event()
    scheduler.add_task(block, "interval", hours=1, args=[release], id="block")
    running = asyncio.ensure_future(scheduler.run_task_now("block"))
    executor = scheduler._plugins.executors["default"]
    await wait_until(lambda: executor.active_instances("block") == 1)
    with pytest.raises(MaxInstancesReachedError):
        await scheduler.run_task_now("block")
    release.set()
    assert await running is None


async def test_the_tasks_timeout_applies(harness: Harness) -> None:
    if harness.kind == "background":
        pytest.skip("coroutines run in threads there; the thread case is in test_retries")
    scheduler = await harness.started(timezone="UTC")
    scheduler.add_task(hang, "interval", hours=1, id="hang", timeout=0.1)
    with pytest.raises(RunTimeoutError):
        await scheduler.run_task_now("hang")


def test_the_sync_twin_and_a_stopped_scheduler() -> None:
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_task(multiply, "interval", hours=1, args=[4, 5], id="multiply")
    with pytest.raises(SchedulerNotRunningError):
        scheduler.run_task_now_sync("multiply")
    with scheduler:
        assert scheduler.run_task_now_sync("multiply") == 20
        assert scheduler.run_task_now_sync("multiply", 3, 3) == 9
        scheduler.add_task(refuse, "interval", hours=1, id="refuse")
        with pytest.raises(PermissionError):
            scheduler.run_task_now_sync("refuse")
