"""run_task_now_queued: run-now requests that find the task at its ``max_instances``
wait in a queue, higher priority first and FIFO within a level, are logged when queued
and started, and leave the queue when their caller gives up
(tickwork/schedulers/_run_now.py)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from scheduler_helpers import wait_until

from tickwork import AsyncIOScheduler, BackgroundScheduler
from tickwork.events import TASK_MAX_INSTANCES
from tickwork.exceptions import InvalidTaskError

ORDER: list[str] = []
GATE = threading.Event()


def blocking(label: str) -> str:
    """Note the label; the first run holds the only slot until GATE opens."""
    ORDER.append(label)
    GATE.wait(10)
    return label


async def waiting(label: str, release: asyncio.Event) -> str:
    ORDER.append(label)
    await release.wait()
    return label


#: (label, priority), in the order they are asked for.
ASKED = [("low-1", 0), ("high-1", 5), ("low-2", 0), ("high-2", 5), ("mid", 1)]
SERVED = ["first", "high-1", "high-2", "mid", "low-1", "low-2"]


def test_a_saturated_thread_executor_serves_by_priority_then_arrival(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ORDER.clear()
    GATE.clear()
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_task(blocking, "interval", hours=1, args=["x"], id="t", max_instances=1)
    refused: list[object] = []
    scheduler.add_listener(refused.append, TASK_MAX_INSTANCES)
    scheduler.start(paused=True)
    results: dict[str, object] = {}
    threads: list[threading.Thread] = []

    def ask(label: str, priority: int) -> None:
        results[label] = scheduler.run_task_now_queued_sync(
            "t", priority=priority, args=[label], timeout=20
        )

    try:
        with caplog.at_level(logging.INFO, logger="tickwork"):
            threads.append(threading.Thread(target=ask, args=("first", 0)))
            threads[-1].start()
            wait_until_sync(lambda: ORDER == ["first"])
            for label, priority in ASKED:
                threads.append(threading.Thread(target=ask, args=(label, priority)))
                threads[-1].start()
                wait_until_sync(queued_is(scheduler, "t", len(threads) - 1))
            GATE.set()  # each run ends at once from here on: the queue drains in order
            for thread in threads:
                thread.join(20)
        assert ORDER == SERVED
        assert results == {label: label for label in SERVED}
        assert refused == []  # waiting is not skipping: no TASK_MAX_INSTANCES
        assert "run-now of task 't' queued (priority 5, 2 waiting)" in caplog.text
        assert "run-now of task 't' (priority 1) started from the queue" in caplog.text
    finally:
        GATE.set()
        scheduler.shutdown()


def queued_is(scheduler: Any, task_id: str, count: int) -> Callable[[], bool]:
    """The condition: ``count`` run-now requests of ``task_id`` wait."""
    return lambda: scheduler._run_now.queued(task_id) == count


def wait_until_sync(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


async def test_a_saturated_asyncio_executor_serves_by_priority_and_a_cancelled_request_leaves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ORDER.clear()
    release = asyncio.Event()
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_task(waiting, "interval", hours=1, args=["x", release], id="a", max_instances=1)
    scheduler.start(paused=True)
    try:
        with caplog.at_level(logging.INFO, logger="tickwork"):
            first = asyncio.ensure_future(
                scheduler.run_task_now_queued("a", args=["first", release])
            )
            await wait_until(lambda: ORDER == ["first"])
            asked: dict[str, asyncio.Future[Any]] = {}
            for label, priority in [*ASKED, ("gone", 9)]:
                asked[label] = asyncio.ensure_future(
                    scheduler.run_task_now_queued("a", priority=priority, args=[label, release])
                )
                await wait_until(queued_is(scheduler, "a", len(asked)))
            asked["gone"].cancel()  # its caller gives up: it leaves the queue
            await wait_until(lambda: scheduler._run_now.queued("a") == len(ASKED))
            assert "run-now of task 'a' (priority 9) left the queue" in caplog.text
            release.set()
            assert await first == "first"
            for label, _ in ASKED:
                assert await asked[label] == label
        assert ORDER == SERVED
    finally:
        release.set()
        await scheduler.shutdown_async()


def test_a_priority_that_is_not_an_int_is_refused_by_value() -> None:
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_task(blocking, "interval", hours=1, args=["x"], id="t")
    scheduler.start(paused=True)
    try:
        with pytest.raises(InvalidTaskError, match="must be an int, got '5'"):
            scheduler.run_task_now_queued_sync("t", priority="5")  # type: ignore[arg-type]
    finally:
        scheduler.shutdown()
