"""Mistakes with event loops are named, with what to do: start() of a
NativeAsyncIOScheduler without await, a coroutine task using an object of another loop,
a scheduler whose loop ended without shutting it down, a given loop that is closed or
not running."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings

import pytest

from tickwork.events import TASK_ERROR, TaskExecutionEvent
from tickwork.exceptions import ConfigurationError, SchedulerAlreadyRunningError
from tickwork.schedulers import AsyncIOScheduler, BackgroundScheduler, NativeAsyncIOScheduler

AWAIT_START = r"await scheduler\.start\(\)"


async def nothing() -> None:
    """A task."""


# -- NativeAsyncIOScheduler.start() without await ----------------------------------------


async def test_start_without_await_is_reported_at_once(caplog: pytest.LogCaptureFixture) -> None:
    scheduler = NativeAsyncIOScheduler()
    with pytest.warns(RuntimeWarning, match=AWAIT_START):
        scheduler.start()  # type: ignore[unused-coroutine]
    assert not scheduler.running
    (record,) = [r for r in caplog.records if "without await" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "await scheduler.start()" in record.getMessage()


async def test_an_awaited_start_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    scheduler = NativeAsyncIOScheduler()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await scheduler.start()
        assert scheduler.running
        await scheduler.shutdown()
    assert not [r for r in caplog.records if "without await" in r.getMessage()]


async def test_start_can_be_a_task_or_gathered() -> None:
    first, second = NativeAsyncIOScheduler(), NativeAsyncIOScheduler()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await asyncio.create_task(first.start())
        await asyncio.gather(second.start())
        assert first.running
        assert second.running
        await first.shutdown()
        await second.shutdown()


async def test_a_start_closed_on_purpose_says_nothing() -> None:
    scheduler = NativeAsyncIOScheduler()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scheduler.start(paused=True).close()
    assert not scheduler.running


# -- a coroutine task using an object of another event loop ------------------------------


def failure_of(errors: list[TaskExecutionEvent], caplog: pytest.LogCaptureFixture) -> str:
    deadline = time.monotonic() + 10
    while not errors:
        assert time.monotonic() < deadline, "the task did not fail"
        time.sleep(0.01)
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    return record.getMessage()


async def test_a_thread_executor_names_the_private_loop(caplog: pytest.LogCaptureFixture) -> None:
    """A BackgroundScheduler inside an asyncio program runs coroutine tasks with
    asyncio.run in its threads: a future of the program's loop cannot be awaited there."""
    future = asyncio.get_running_loop().create_future()

    async def uses_the_future() -> None:
        await future

    errors: list[TaskExecutionEvent] = []
    scheduler = BackgroundScheduler()
    scheduler.add_listener(errors.append, TASK_ERROR)
    with caplog.at_level(logging.ERROR, logger="tickwork"):
        scheduler.start()
        try:
            scheduler.add_task(uses_the_future)
            message = await asyncio.to_thread(failure_of, errors, caplog)
        finally:
            await scheduler.shutdown_async()
    assert "attached to a different loop" in message
    assert "hint: ThreadPoolExecutor runs an async def task on an event loop of its own" in message
    assert "AsyncIOScheduler" in message


async def test_the_asyncio_executor_names_the_schedulers_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An AsyncIOScheduler on a loop of its own (started from sync code, or isolated)
    runs coroutine tasks there, not on the program's loop."""
    future = asyncio.get_running_loop().create_future()

    async def uses_the_future() -> None:
        await future

    errors: list[TaskExecutionEvent] = []
    scheduler = AsyncIOScheduler(isolated_event_loop=True)
    scheduler.add_listener(errors.append, TASK_ERROR)
    with caplog.at_level(logging.ERROR, logger="tickwork"):
        scheduler.start()
        try:
            scheduler.add_task(uses_the_future)
            message = await asyncio.to_thread(failure_of, errors, caplog)
        finally:
            await asyncio.to_thread(scheduler.shutdown)
    assert "attached to a different loop" in message
    assert "hint: AsyncIOExecutor runs coroutines on its scheduler's event loop" in message


# -- loops that ended, are closed, or do not run ------------------------------------------


def test_starting_again_after_the_loop_ended_says_why() -> None:
    scheduler = AsyncIOScheduler()

    async def start_and_leave() -> None:
        scheduler.start()  # never shut down: asyncio.run ends with it running

    async def start_again() -> None:
        with pytest.raises(SchedulerAlreadyRunningError, match="event loop that has closed"):
            scheduler.start()

    async def start_after_shutdown() -> None:
        scheduler.start()
        await scheduler.shutdown_async()

    asyncio.run(start_and_leave())
    asyncio.run(start_again())
    scheduler.shutdown()  # what the message says to do first
    asyncio.run(start_after_shutdown())


def test_a_closed_loop_is_refused_at_start() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    scheduler = AsyncIOScheduler(event_loop=loop)
    with pytest.raises(ConfigurationError, match=r"event_loop=\.\.\.\) is closed"):
        scheduler.start()
    assert not scheduler.running


def test_a_given_loop_that_does_not_run_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    other = asyncio.new_event_loop()
    scheduler = AsyncIOScheduler(event_loop=other)

    async def start_from_this_loop() -> None:
        with caplog.at_level(logging.WARNING, logger="tickwork"):
            scheduler.start()

    try:
        asyncio.run(start_from_this_loop())
        (record,) = [r for r in caplog.records if "not running" in r.getMessage()]
        assert record.levelno == logging.WARNING
        assert "Leave event_loop out" in record.getMessage()
    finally:
        scheduler.shutdown(wait=False)
        other.run_until_complete(asyncio.sleep(0.01))  # the driver starts, sees it stopped
        other.close()
