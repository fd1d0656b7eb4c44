"""Cancelling runs through a real scheduler: cancel_run(run_id), cancel_task_runs(task_id),
pending retries dropped, threads that cannot be stopped said so
(tickwork/schedulers/_cancel.py)."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from scheduler_helpers import Harness, wait_until

from tickwork.events import TASK_CANCELLED, TASK_ERROR, TASK_RETRY
from tickwork.exceptions import ConfigurationError, RunCancelledError

started: list[str] = []


async def hangs(key: str) -> None:
    started.append(key)
    await asyncio.sleep(30)


def fails(key: str) -> None:
    started.append(key)
    raise ConnectionError(key)


def blocks(release: threading.Event) -> None:
    release.wait(10)


def coroutine_kind(harness: Harness) -> None:
    if harness.kind == "background":
        pytest.skip("the background scheduler runs coroutines in threads, which cannot stop")


async def test_cancel_run_stops_a_running_coroutine(harness: Harness) -> None:
    coroutine_kind(harness)
    scheduler = await harness.started(timezone="UTC")
    scheduler.add_task(hangs, args=["a"], id="hung", retries=2, retry_delay=0)
    await wait_until(lambda: bool(scheduler.get_runs("hung", outcome="running")))
    (running,) = scheduler.get_runs("hung", outcome="running")
    assert await scheduler.cancel_run_async(running.run_id) is True
    await wait_until(lambda: bool(harness.codes(TASK_CANCELLED)))
    (event,) = harness.codes(TASK_CANCELLED)
    assert isinstance(event.exception, RunCancelledError)
    assert running.run_id in str(event.exception)
    assert event.run_id == running.run_id
    await wait_until(lambda: bool(scheduler.get_runs("hung", outcome="cancelled")))
    await asyncio.sleep(0.2)
    assert harness.codes(TASK_RETRY) == []  # a cancelled run is not tried again
    assert harness.codes(TASK_ERROR) == []
    # Nothing runs under that id any more.
    assert await scheduler.cancel_run_async(running.run_id) is False


async def test_cancel_task_runs_counts_and_drops_pending_retries(harness: Harness) -> None:
    scheduler = await harness.started(timezone="UTC")
    scheduler.add_task(fails, args=["retried"], id="flaky", retries=3, retry_delay=30)
    await wait_until(lambda: bool(harness.codes(TASK_RETRY)))
    # The retry is written by the run keeper's thread, soon after the event.
    store = scheduler._plugins.stores["default"]
    await wait_until(lambda: store.next_retry_time() is not None)
    assert await scheduler.cancel_task_runs_async("flaky") == 1
    assert store.next_retry_time() is None
    assert await scheduler.cancel_task_runs_async("flaky") == 0


async def test_a_run_in_a_thread_cannot_be_cancelled_and_says_so(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    scheduler = await harness.started(timezone="UTC")
    scheduler.add_task(blocks, args=[release], id="blocking")
    executor = scheduler._plugins.executors["default"]
    await wait_until(lambda: executor.active_instances("blocking") == 1)
    with caplog.at_level(logging.WARNING):
        assert await scheduler.cancel_task_runs_async("blocking") == 0
    assert "cannot be cancelled" in caplog.text
    release.set()


def test_a_string_that_is_no_run_id_is_refused() -> None:
    from tickwork import BackgroundScheduler

    with pytest.raises(ConfigurationError, match="is not a run id"):
        BackgroundScheduler().cancel_run("some-task")
