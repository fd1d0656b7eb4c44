"""run_task_now_queued when the executor itself is saturated: requests wait for a free
worker of the task's executor as well as for a ``max_instances`` slot, and take it
higher priority first, FIFO within a level, across the executor's tasks; scheduled runs
go first (tickwork/schedulers/_run_queue.py). Real thread pools, process pools and the
asyncio executor's threads, each with one worker."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scheduler_helpers import wait_until

from tickwork import AsyncIOScheduler, BackgroundScheduler
from tickwork.events import TASK_EXECUTED, TASK_MAX_INSTANCES, TASK_SUBMITTED
from tickwork.executors import AsyncIOExecutor, ProcessPoolExecutor, ThreadPoolExecutor

ORDER: list[str] = []
GATE = threading.Event()


def blocking(label: str) -> str:
    """Note the label; hold the worker until GATE opens."""
    ORDER.append(label)
    GATE.wait(20)
    return label


def after_file(label: str, gate: str) -> str:
    """In a worker process: hold the worker until the file ``gate`` exists."""
    deadline = time.monotonic() + 20
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.005)
    return label


async def at_once(label: str) -> str:
    ORDER.append(label)
    return label


#: (label, task, priority) in the order asked for, while "first" holds the only worker;
#: tasks "a" and "b" share that worker, and neither is at its max_instances.
ASKED = [
    ("low-1", "a", 0),
    ("high-1", "b", 5),
    ("low-2", "b", 0),
    ("high-2", "a", 5),
    ("mid", "a", 1),
]
SERVED = ["first", "high-1", "high-2", "mid", "low-1", "low-2"]
#: SERVED on the asyncio executor, with a coroutine asked for while its threads are busy.
SERVED_AROUND_A_COROUTINE = ["first", "coroutine", *SERVED[1:]]


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    ORDER.clear()
    GATE.clear()
    yield
    GATE.set()


def waiting(scheduler: Any) -> int:
    return int(scheduler._run_now.queued("a") + scheduler._run_now.queued("b"))


def wait_until_sync(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def ask_in_thread(
    scheduler: Any, results: dict[str, Any], label: str, task: str, priority: int, *extra: Any
) -> threading.Thread:
    def ask() -> None:
        results[label] = scheduler.run_task_now_queued_sync(
            task, priority=priority, args=[label, *extra], timeout=30
        )

    thread = threading.Thread(target=ask)
    thread.start()
    return thread


def test_a_saturated_thread_pool_starts_queued_requests_by_priority_across_tasks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = BackgroundScheduler(
        timezone="UTC", executors={"default": ThreadPoolExecutor(max_workers=1)}
    )
    for task_id in ("a", "b"):
        scheduler.add_task(blocking, "interval", hours=1, args=["x"], id=task_id, max_instances=10)
    refused: list[object] = []
    scheduler.add_listener(refused.append, TASK_MAX_INSTANCES)
    scheduler.start(paused=True)
    results: dict[str, Any] = {}
    try:
        with caplog.at_level(logging.INFO, logger="tickwork"):
            threads = [ask_in_thread(scheduler, results, "first", "a", 0)]
            wait_until_sync(lambda: ORDER == ["first"])
            for number, (label, task, priority) in enumerate(ASKED, 1):
                threads.append(ask_in_thread(scheduler, results, label, task, priority))
                wait_until_sync(lambda n=number: waiting(scheduler) == n)  # type: ignore[misc]
            assert ORDER == ["first"]  # the slots are free: the worker is what they wait for
            GATE.set()
            for thread in threads:
                thread.join(30)
        assert ORDER == SERVED
        assert results == {label: label for label in SERVED}
        assert refused == []
        assert (
            "run-now of task 'b' queued (priority 5, 2 waiting): every worker of executor "
            "'default' is busy" in caplog.text
        )
    finally:
        GATE.set()
        scheduler.shutdown()


def test_a_scheduled_run_that_comes_due_goes_before_the_queued_requests() -> None:
    """The rule: scheduled runs go to the executor as they come due and wait there in
    arrival order; queued run-now requests take only a worker nothing else waits for."""
    scheduler = BackgroundScheduler(
        timezone="UTC", executors={"default": ThreadPoolExecutor(max_workers=1)}
    )
    for task_id in ("a", "b"):
        scheduler.add_task(blocking, "interval", hours=1, args=["x"], id=task_id, max_instances=10)
    submitted: list[str] = []
    scheduler.add_listener(lambda event: submitted.append(event.task_id), TASK_SUBMITTED)
    scheduler.start()
    results: dict[str, Any] = {}
    try:
        threads = [ask_in_thread(scheduler, results, "first", "a", 0)]
        wait_until_sync(lambda: ORDER == ["first"])
        threads.append(ask_in_thread(scheduler, results, "low", "a", 0))
        wait_until_sync(lambda: waiting(scheduler) == 1)
        threads.append(ask_in_thread(scheduler, results, "high", "b", 5))
        wait_until_sync(lambda: waiting(scheduler) == 2)
        scheduler.add_task(blocking, "date", run_date=datetime.now(UTC), args=["scheduled"], id="s")
        wait_until_sync(lambda: "s" in submitted)  # in the executor, behind "first"
        GATE.set()
        for thread in threads:
            thread.join(30)
        wait_until_sync(lambda: len(ORDER) == 4)
        assert ORDER == ["first", "scheduled", "high", "low"]
    finally:
        GATE.set()
        scheduler.shutdown()


def test_a_saturated_process_pool_starts_queued_requests_by_priority(tmp_path: Path) -> None:
    gate = str(tmp_path / "gate")
    pool = ProcessPoolExecutor(max_workers=1)
    scheduler = BackgroundScheduler(timezone="UTC", executors={"default": pool})
    for task_id in ("a", "b"):
        scheduler.add_task(
            after_file, "interval", hours=1, args=["x", gate], id=task_id, max_instances=10
        )
    ended: list[str] = []  # one worker: the order runs end is the order they started
    scheduler.add_listener(lambda event: ended.append(event.return_value), TASK_EXECUTED)
    scheduler.start(paused=True)
    task = scheduler.get_task("a")
    assert task is not None
    results: dict[str, Any] = {}
    try:
        threads = [ask_in_thread(scheduler, results, "first", "a", 0, gate)]
        wait_until_sync(lambda: pool.free_workers(task) == 0)
        for number, (label, task_id, priority) in enumerate(ASKED, 1):
            threads.append(ask_in_thread(scheduler, results, label, task_id, priority, gate))
            wait_until_sync(lambda n=number: waiting(scheduler) == n)  # type: ignore[misc]
        Path(gate).touch()
        for thread in threads:
            thread.join(30)
        assert ended == SERVED
        assert results == {label: label for label in SERVED}
    finally:
        Path(gate).touch()
        scheduler.shutdown()


async def test_the_asyncio_executor_queues_plain_functions_for_its_threads_not_coroutines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = AsyncIOScheduler(
        timezone="UTC", executors={"default": AsyncIOExecutor(max_workers=1)}
    )
    for task_id in ("a", "b"):
        scheduler.add_task(blocking, "interval", hours=1, args=["x"], id=task_id, max_instances=10)
    scheduler.add_task(at_once, "interval", hours=1, args=["x"], id="c")
    scheduler.start(paused=True)
    ask = scheduler.run_task_now_queued
    try:
        with caplog.at_level(logging.INFO, logger="tickwork"):
            first = asyncio.ensure_future(ask("a", args=["first"]))
            await wait_until(lambda: ORDER == ["first"])
            asked: dict[str, asyncio.Future[Any]] = {}
            for label, task_id, priority in [*ASKED, ("gone", "b", 9)]:
                asked[label] = asyncio.ensure_future(ask(task_id, priority=priority, args=[label]))
                await wait_until(lambda: waiting(scheduler) == len(asked))
            # A coroutine needs none of the threads: it starts while they are all busy.
            assert await ask("c", args=["coroutine"]) == "coroutine"
            asked["gone"].cancel()  # its caller gives up: it leaves the queue
            await wait_until(lambda: waiting(scheduler) == len(ASKED))
            assert "run-now of task 'b' (priority 9) left the queue" in caplog.text
            GATE.set()
            assert await first == "first"
            for label, _, _ in ASKED:
                assert await asked[label] == label
        assert ORDER == SERVED_AROUND_A_COROUTINE
        assert scheduler._run_now.queue._queues == {}  # nothing left waiting
        assert scheduler._run_now.queue._watched == {}  # nor watched
    finally:
        GATE.set()
        await scheduler.shutdown_async()
