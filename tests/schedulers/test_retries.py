"""Retries and timeouts through a real scheduler, on every scheduler kind: each attempt
its own run record and events, the backoff followed, retry_on respected, a timeout the
outcome of a hung run (tickwork/schedulers/_retries.py, tickwork/executors/base.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from scheduler_helpers import Harness, wait_until

from tickwork.events import (
    TASK_ERROR,
    TASK_EXECUTED,
    TASK_RETRY,
    TASK_TIMEOUT,
    TaskRetryEvent,
)
from tickwork.exceptions import RunTimeoutError

#: Calls per test, by key (each test uses keys of its own).
calls: dict[str, int] = {}
lock = threading.Lock()


def count(key: str) -> int:
    with lock:
        calls[key] = calls.get(key, 0) + 1
        return calls[key]


def fails_twice(key: str) -> str:
    if count(key) <= 2:
        raise ConnectionError(f"{key}: try {calls[key]}")
    return "done"


async def fails_twice_async(key: str) -> str:
    return fails_twice(key)


def always_fails(key: str) -> None:
    count(key)
    raise ValueError(f"{key}: no")


async def hangs(key: str) -> None:
    count(key)
    await asyncio.sleep(30)


def hangs_in_thread(key: str, release: threading.Event) -> None:
    count(key)
    release.wait(10)


@pytest.mark.parametrize("fn", [fails_twice, fails_twice_async])
async def test_a_failing_run_is_retried_until_it_succeeds(harness: Harness, fn: Any) -> None:
    key = f"{harness.kind}-{fn.__name__}"
    scheduler = await harness.started(timezone="UTC")
    scheduler.add_task(fn, args=[key], id="flaky", retries=3, retry_delay=0.05)
    await wait_until(lambda: bool(harness.codes(TASK_EXECUTED)))
    assert calls[key] == 3
    errors = harness.codes(TASK_ERROR)
    assert [event.attempt for event in errors] == [1, 2]
    retries = harness.codes(TASK_RETRY)
    assert all(isinstance(event, TaskRetryEvent) for event in retries)
    assert [event.attempt for event in retries] == [2, 3]
    assert all(event.retry_at is not None for event in retries)
    (success,) = harness.codes(TASK_EXECUTED)
    assert success.attempt == 3
    assert success.return_value == "done"
    # One scheduled time, three attempts, three run ids.
    assert len({event.scheduled_run_time for event in [*errors, success]}) == 1
    assert success.run_id.endswith("#3")
    await wait_until(lambda: len(scheduler.get_runs("flaky")) == 3)
    records = scheduler.get_runs("flaky")
    assert sorted((r.attempt, r.outcome) for r in records) == [
        (1, "error"),
        (2, "error"),
        (3, "success"),
    ]
    assert {r.run_id for r in records} == {event.run_id for event in [*errors, success]}


async def test_retries_stop_after_the_last_attempt_and_follow_the_backoff(
    harness: Harness,
) -> None:
    key = f"{harness.kind}-exhausted"
    scheduler = await harness.started(timezone="UTC")
    scheduler.add_task(
        always_fails, args=[key], id="bad", retries=2, retry_delay=0.1, retry_backoff=3
    )
    await wait_until(lambda: len(harness.codes(TASK_ERROR)) == 3)
    await asyncio.sleep(0.5)  # no fourth attempt comes
    assert calls[key] == 3
    errors = harness.codes(TASK_ERROR)
    first, second = (event.retry_at for event in harness.codes(TASK_RETRY))
    # The second retry waits retry_delay * retry_backoff (0.3 s) after the second failure,
    # which came after the first retry's time.
    assert 0.3 <= (second - first).total_seconds() < 1.3
    assert [event.attempt for event in errors] == [1, 2, 3]
    await wait_until(lambda: len(scheduler.get_runs("bad", outcome="error")) == 3)


async def test_an_error_outside_retry_on_is_not_retried(harness: Harness) -> None:
    key = f"{harness.kind}-not-retried"
    scheduler = await harness.started(timezone="UTC")
    scheduler.add_task(
        always_fails, args=[key], id="bad", retries=3, retry_delay=0.01, retry_on=OSError
    )
    await wait_until(lambda: bool(harness.codes(TASK_ERROR)))
    await asyncio.sleep(0.3)
    assert calls[key] == 1
    assert harness.codes(TASK_RETRY) == []


async def test_a_hung_coroutine_times_out_and_its_retry_runs(harness: Harness) -> None:
    if harness.kind == "background":
        pytest.skip("the background scheduler runs coroutines in threads: see the thread test")
    key = f"{harness.kind}-hung"
    scheduler = await harness.started(timezone="UTC")
    began = time.monotonic()
    scheduler.add_task(hangs, args=[key], id="hung", timeout=0.2, retries=1, retry_delay=0)
    await wait_until(lambda: len(harness.codes(TASK_TIMEOUT)) == 2)
    assert time.monotonic() - began < 2  # two runs cut at 0.2 s, not 30 s
    first, second = harness.codes(TASK_TIMEOUT)
    assert isinstance(first.exception, RunTimeoutError)
    assert (first.attempt, second.attempt) == (1, 2)
    assert first.duration == pytest.approx(0.2, abs=0.15)
    assert calls[key] == 2
    await wait_until(lambda: len(scheduler.get_runs("hung", outcome="timeout")) == 2)


async def test_a_thread_past_its_timeout_is_reported_at_the_limit(harness: Harness) -> None:
    key = f"{harness.kind}-thread"
    release = threading.Event()
    scheduler = await harness.started(timezone="UTC")
    began = time.monotonic()
    scheduler.add_task(hangs_in_thread, args=[key, release], id="slow", timeout=0.2)
    await wait_until(lambda: bool(harness.codes(TASK_TIMEOUT)))
    reported = time.monotonic() - began
    assert reported < 2  # at the limit, while the thread still runs
    executor = scheduler._plugins.executors["default"]
    assert executor.active_instances("slow") == 1  # it keeps its slot
    release.set()
    await wait_until(lambda: executor.active_instances("slow") == 0)
    await asyncio.sleep(0.1)
    assert harness.codes(TASK_EXECUTED) == []  # what it returned late is dropped
    await wait_until(lambda: [r.outcome for r in scheduler.get_runs("slow")] == ["timeout"])


def fails_once_per_file(path: str) -> str:
    """Fails on its first attempt (an importable function, for the file store)."""
    marker = Path(path)
    if not marker.exists():
        marker.write_text("failed once")
        raise ConnectionError("first attempt fails")
    return "second attempt"


def test_a_pending_retry_in_a_file_store_survives_a_restart(tmp_path: Path) -> None:
    from tickwork import BackgroundScheduler
    from tickwork.stores import FileStore

    directory = str(tmp_path / "tasks")
    marker = str(tmp_path / "marker")
    first = BackgroundScheduler(stores={"default": FileStore(directory)}, timezone="UTC")
    retried: list[Any] = []
    first.add_listener(retried.append, TASK_RETRY)
    with first:
        first.add_task(fails_once_per_file, args=[marker], id="once", retries=1, retry_delay=1.5)
        deadline = time.monotonic() + 5
        while not retried or first._plugins.stores["default"].next_retry_time() is None:
            assert time.monotonic() < deadline, "no retry was written"
            time.sleep(0.01)
    # The retry was due 1.5 s after the failure; the first scheduler is gone by then.
    second = BackgroundScheduler(stores={"default": FileStore(directory)}, timezone="UTC")
    done: list[Any] = []
    second.add_listener(done.append, TASK_EXECUTED)
    with second:
        deadline = time.monotonic() + 5
        while not done:
            assert time.monotonic() < deadline, "the retry was not made after the restart"
            time.sleep(0.01)
        records = second.get_runs("once")
    (event,) = done
    assert (event.attempt, event.return_value) == (2, "second attempt")
    assert sorted((r.attempt, r.outcome) for r in records) == [(1, "error"), (2, "success")]
