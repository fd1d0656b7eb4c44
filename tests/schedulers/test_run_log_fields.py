"""Every run-related log record carries the same extra fields (task_id, run_time,
duration) for JSON log formatters: runs that ran (DEBUG start and end, ERROR) and runs
that did not start (missed, max_instances), through a real scheduler."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from tickwork.clock import FakeClock
from tickwork.events import TASK_EXECUTED, TASK_MAX_INSTANCES, TASK_MISSED
from tickwork.executors import DebugExecutor, ThreadPoolExecutor
from tickwork.schedulers import BackgroundScheduler

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FIELDS = ("task_id", "run_time", "duration")


def noop() -> None:
    """The task."""


def records_of(caplog: pytest.LogCaptureFixture, task_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "task_id", None) == task_id]


def wait_for(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_missed_runs_carry_the_fields(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(T0)
    missed: list[object] = []
    scheduler = BackgroundScheduler(
        timezone="UTC", clock=clock, executors={"default": DebugExecutor()}
    )
    scheduler.add_listener(missed.append, TASK_MISSED)
    scheduler.add_task(
        noop, "interval", seconds=10, coalesce=False, mistrigger_grace_time=5, id="m"
    )
    with caplog.at_level(logging.WARNING, logger="tickwork"), scheduler:
        clock.advance(seconds=25)  # +10 is 15 s late: missed; +20 is 5 s late: runs
        wait_for(lambda: missed)
    (record,) = [r for r in records_of(caplog, "m") if "missed" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert tuple(getattr(record, name) for name in FIELDS) == (
        "m",
        T0 + timedelta(seconds=10),
        None,
    )


def test_max_instances_records_carry_the_fields(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    refused: list[object] = []
    scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor()})
    scheduler.add_listener(refused.append, TASK_MAX_INSTANCES)
    scheduler.add_task(
        release.wait, "interval", seconds=0.02, args=[5], mistrigger_grace_time=None, id="x"
    )
    with caplog.at_level(logging.WARNING, logger="tickwork"), scheduler:
        wait_for(lambda: refused)
        release.set()
    record = next(r for r in records_of(caplog, "x") if "skipped" in r.getMessage())
    assert record.task_id == "x"  # type: ignore[attr-defined]
    assert isinstance(record.run_time, datetime)  # type: ignore[attr-defined]
    assert record.duration is None  # type: ignore[attr-defined]


def test_a_scheduled_run_logs_start_and_end(caplog: pytest.LogCaptureFixture) -> None:
    done: list[object] = []
    scheduler = BackgroundScheduler()
    scheduler.add_listener(done.append, TASK_EXECUTED)
    with caplog.at_level(logging.DEBUG, logger="tickwork.executors"), scheduler:
        scheduler.add_task(noop, id="r")
        wait_for(lambda: done)
    start, end = records_of(caplog, "r")
    assert (start.levelno, end.levelno) == (logging.DEBUG, logging.DEBUG)
    assert start.run_time == end.run_time  # type: ignore[attr-defined]
    assert start.duration is None
    assert end.duration >= 0
