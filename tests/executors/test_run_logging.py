"""A log line per run, on every executor kind: DEBUG when a run starts and when it ends
(with its duration), the ERROR line of a failed run with its duration; every one of these
records carries the extra fields task_id, run_time and duration (JSON log formatters)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import executor_jobs as jobs
import pytest
from executor_host import T0, Host, make, task

from tickwork.events import TASK_ERROR, TASK_EXECUTED, TaskExecutionEvent
from tickwork.executors import BaseExecutor, ProcessPoolExecutor

KINDS = ["asyncio", "threadpool", "processpool", "debug"]


@pytest.fixture(params=KINDS)
async def setup(request: pytest.FixtureRequest) -> AsyncIterator[tuple[BaseExecutor, Host]]:
    host = Host(asyncio.get_running_loop())
    executor = make(request.param)
    executor.start(host, "default")  # type: ignore[arg-type]
    yield executor, host
    await executor.shutdown_async(wait=True)


async def settled(host: Host, count: int, timeout: float = 10) -> list[TaskExecutionEvent]:
    """The first ``count`` events, once they are all in."""
    deadline = time.monotonic() + timeout
    while len(host.events) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} events, got {host.events}")
        await asyncio.sleep(0.005)
    return host.events


def run_records(caplog: pytest.LogCaptureFixture, task_id: str = "t") -> list[logging.LogRecord]:
    """The records about runs of ``task_id``, in the order they were written."""
    return [r for r in caplog.records if getattr(r, "task_id", None) == task_id]


def fields(record: logging.LogRecord) -> tuple[object, object, object]:
    return record.task_id, record.run_time, record.duration  # type: ignore[attr-defined]


@pytest.mark.parametrize("fn", [jobs.add, jobs.async_add], ids=["function", "coroutine"])
async def test_a_run_logs_its_start_and_end_at_debug(
    setup: tuple[BaseExecutor, Host], caplog: pytest.LogCaptureFixture, fn: object
) -> None:
    executor, host = setup
    caplog.set_level(logging.DEBUG, logger="tickwork.executors")
    executor.send_task(task(fn, 2, 3), [T0])
    (event,) = await settled(host, 1)
    assert event.code == TASK_EXECUTED
    start, end = run_records(caplog)
    assert (start.levelno, end.levelno) == (logging.DEBUG, logging.DEBUG)
    assert start.name == end.name == executor.logger.name
    assert fields(start) == ("t", T0, None)
    assert fields(end)[:2] == ("t", T0)
    duration = end.duration  # type: ignore[attr-defined]
    assert isinstance(duration, float)
    assert 0 <= duration < 5
    assert "started" in start.getMessage()
    assert "finished in" in end.getMessage()
    assert T0.isoformat() in end.getMessage()


async def test_the_duration_is_the_run_time(
    setup: tuple[BaseExecutor, Host], caplog: pytest.LogCaptureFixture
) -> None:
    executor, host = setup
    caplog.set_level(logging.DEBUG, logger="tickwork.executors")
    executor.send_task(task(jobs.sleep_then_return, 0.05, "done"), [T0])
    await settled(host, 1)
    _, end = run_records(caplog)
    assert 0.05 <= end.duration < 5  # type: ignore[attr-defined]


@pytest.mark.parametrize("fn", [jobs.fail, jobs.async_fail], ids=["function", "coroutine"])
async def test_a_failed_run_has_the_fields_and_its_duration(
    setup: tuple[BaseExecutor, Host], caplog: pytest.LogCaptureFixture, fn: object
) -> None:
    executor, host = setup
    caplog.set_level(logging.DEBUG, logger="tickwork.executors")
    executor.send_task(task(fn, "broken on purpose"), [T0])
    (event,) = await settled(host, 1)
    assert event.code == TASK_ERROR
    start, error = run_records(caplog)  # the ERROR line is the run's end: no DEBUG end
    assert fields(start) == ("t", T0, None)
    assert error.levelno == logging.ERROR
    assert fields(error)[:2] == ("t", T0)
    assert isinstance(error.duration, float)
    assert error.duration >= 0
    assert "broken on purpose" in error.getMessage()  # the traceback is kept
    assert " s:\n" in error.getMessage()  # "... raised after 0.000012 s:"


async def test_with_debug_off_only_errors_are_logged(
    setup: tuple[BaseExecutor, Host], caplog: pytest.LogCaptureFixture
) -> None:
    executor, host = setup
    caplog.set_level(logging.INFO, logger="tickwork.executors")
    executor.send_task(task(jobs.add, 1, 1), [T0])
    executor.send_task(task(jobs.fail, "broken on purpose", id="f"), [T0])
    await settled(host, 2)
    await asyncio.sleep(0.05)  # (nothing else is coming)
    assert run_records(caplog) == []
    (error,) = run_records(caplog, "f")
    assert error.levelno == logging.ERROR
    assert isinstance(error.duration, float)  # type: ignore[attr-defined]


async def test_debug_turned_on_while_running_takes_effect(
    setup: tuple[BaseExecutor, Host], caplog: pytest.LogCaptureFixture
) -> None:
    """The level is asked per instance, not once at start: turning DEBUG on for a live
    scheduler shows the next runs."""
    executor, host = setup
    caplog.set_level(logging.INFO, logger="tickwork.executors")
    executor.send_task(task(jobs.add, 1, 1, id="before"), [T0])
    await settled(host, 1)
    caplog.set_level(logging.DEBUG, logger="tickwork.executors")
    executor.send_task(task(jobs.add, 1, 1, id="after"), [T0])
    await settled(host, 2)
    assert run_records(caplog, "before") == []
    assert len(run_records(caplog, "after")) == 2


async def test_several_run_times_log_a_start_and_end_each(
    setup: tuple[BaseExecutor, Host], caplog: pytest.LogCaptureFixture
) -> None:
    executor, host = setup
    caplog.set_level(logging.DEBUG, logger="tickwork.executors")
    later = T0.replace(second=1)
    executor.send_task(task(jobs.add, 1, 1), [T0, later])
    await settled(host, 2)
    seen = [(r.run_time, r.duration is None) for r in run_records(caplog)]  # type: ignore[attr-defined]
    if isinstance(executor, ProcessPoolExecutor):
        # Its lines are written in this process: the starts when the instance goes to a
        # worker, the ends (with the durations the worker measured) when it comes back.
        assert seen == [(T0, True), (later, True), (T0, False), (later, False)]
    else:
        assert seen == [(T0, True), (T0, False), (later, True), (later, False)]


async def test_a_replaced_logger_is_the_one_asked(
    setup: tuple[BaseExecutor, Host], caplog: pytest.LogCaptureFixture
) -> None:
    executor, host = setup
    executor.logger = logging.getLogger("myapp.runs")
    caplog.set_level(logging.INFO, logger="tickwork.executors")
    caplog.set_level(logging.DEBUG, logger="myapp.runs")
    executor.send_task(task(jobs.add, 1, 1), [T0])
    await settled(host, 1)
    assert [r.name for r in run_records(caplog)] == ["myapp.runs", "myapp.runs"]
