"""A failed run leaves no reference cycle: once its event is dropped, the exception and
everything the run held (the task's local variables included) are freed at once, with
the cycle collector off. Until then the exception keeps its whole traceback, the task's
local variables included (error reporters read them)."""

from __future__ import annotations

import asyncio
import gc
import time
import traceback
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import executor_jobs as jobs
import pytest
from executor_host import T0, Host, make, task

from tickwork.events import TASK_ERROR, TaskExecutionEvent
from tickwork.executors import BaseExecutor, ProcessPoolExecutor
from tickwork.schedulers import BackgroundScheduler

KINDS = ["asyncio", "threadpool", "processpool", "debug"]


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    gc.collect()  # start clean: nothing of earlier tests left for a collection to find
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture(params=KINDS)
async def setup(
    request: pytest.FixtureRequest, no_cycle_collector: None
) -> AsyncIterator[tuple[BaseExecutor, Host]]:
    host = Host(asyncio.get_running_loop())
    executor = make(request.param)
    executor.start(host, "default")  # type: ignore[arg-type]
    yield executor, host
    await executor.shutdown_async(wait=True)


async def freed(ref: Callable[[], object], timeout: float = 3) -> bool:
    """Whether ``ref`` dies within ``timeout`` (a worker may still be returning from the
    run); with the collector off, an object in a cycle never does."""
    deadline = time.monotonic() + timeout
    while ref() is not None:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def one_event(host: Host) -> TaskExecutionEvent:
    deadline = time.monotonic() + 10
    while not host.events:
        assert time.monotonic() < deadline, "no event"
        await asyncio.sleep(0.005)
    return host.events.pop()


@pytest.mark.parametrize(
    "fn", [jobs.fail_with_a_local, jobs.async_fail_with_a_local], ids=["function", "coroutine"]
)
async def test_a_failed_run_is_freed_when_its_event_is_dropped(
    setup: tuple[BaseExecutor, Host], fn: Callable[..., Any]
) -> None:
    executor, host = setup
    jobs.PAYLOADS.clear()
    executor.send_task(task(fn, "broken on purpose"), [T0])
    event = await one_event(host)
    assert event.code == TASK_ERROR
    error = weakref.ref(event.exception)  # type: ignore[arg-type]
    assert "raise TrackedError(message)" in (event.traceback or "")
    in_process = not isinstance(executor, ProcessPoolExecutor)  # (else pickled, no frames)
    if in_process:
        # Still useful while the event is kept: the whole stack down to the raise, and
        # the task's local variables for error reporters.
        text = "".join(traceback.format_exception(event.exception))  # type: ignore[arg-type]
        assert "raise TrackedError(message)" in text
        (payload,) = jobs.PAYLOADS
        assert payload() is not None
    del event
    assert await freed(error), "the exception is kept alive by a reference cycle"
    if in_process:
        assert await freed(payload), "the task's local variables outlive the event"


def test_through_a_scheduler_and_a_listener(no_cycle_collector: None) -> None:
    """The whole path: run, listener, drop."""
    jobs.PAYLOADS.clear()
    got: list[TaskExecutionEvent] = []
    scheduler = BackgroundScheduler()
    scheduler.add_listener(got.append, TASK_ERROR)
    with scheduler:
        scheduler.add_task(jobs.fail_with_a_local, args=["broken on purpose"])
        deadline = time.monotonic() + 10
        while not got:
            assert time.monotonic() < deadline, "the run did not fail in time"
            time.sleep(0.01)
        error = weakref.ref(got[0].exception)  # type: ignore[arg-type]
        got.clear()
        (payload,) = jobs.PAYLOADS
        deadline = time.monotonic() + 3
        while (payload() is not None or error() is not None) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert payload() is None
        assert error() is None
