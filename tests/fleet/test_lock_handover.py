"""The lock holder's recorded progress, and a take-over that skips what it ran (in one
process, on a fake clock: fast and exact)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tickwork.clock import FakeClock
from tickwork.events import TASK_EXECUTED, TASK_MISSED
from tickwork.executors import DebugExecutor
from tickwork.locks import FileLockProtected
from tickwork.schedulers import BackgroundScheduler

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def noop() -> None:
    """The task."""


def test_progress_is_recorded_beside_the_lock(tmp_path: Path) -> None:
    lock = FileLockProtected(str(tmp_path / "{store}.lock"), "jobs")
    assert lock.progress_path == str(tmp_path / "jobs.lock.progress")
    assert lock.last_progress() is None
    lock.record_progress(1767225600.123456)
    lock.record_progress(1767225601.5)
    other = FileLockProtected(str(tmp_path / "{store}.lock"), "jobs")
    assert other.last_progress() == 1767225601.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.lock.progress"]
    Path(lock.progress_path).write_text("garbage")
    assert other.last_progress() is None


def test_a_new_holder_skips_what_the_last_one_ran(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    events: dict[str, list[Any]] = {"a": [], "b": []}

    def make(name: str) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(
            clock=clock,
            timezone="UTC",
            lock_path=str(tmp_path / "{store}.lock"),
            executors={"default": DebugExecutor()},
        )
        scheduler.lock_retry_interval = 0.02
        scheduler.add_listener(events[name].append, TASK_EXECUTED | TASK_MISSED)
        scheduler.add_task(
            noop, "interval", seconds=10, start_at=T0 + timedelta(seconds=10), id="t"
        )
        return scheduler

    schedulers = {"a": make("a"), "b": make("b")}
    for scheduler in schedulers.values():
        scheduler.start()
    try:
        clock.advance(seconds=10)
        wait_until(lambda: len(events["a"]) + len(events["b"]) == 1)
        holder = "a" if events["a"] else "b"
        heir = "b" if holder == "a" else "a"
        # The heir takes the lock; its own copy of "t" still says T0 + 10 s.
        schedulers[holder].shutdown()
        time.sleep(0.3)
        assert events[heir] == [], "the new holder ran a slot the last one had run"
        clock.advance(seconds=10)
        wait_until(lambda: len(events[heir]) == 1)
        assert [(e.code, e.scheduled_run_time) for e in events[holder] + events[heir]] == [
            (TASK_EXECUTED, T0 + timedelta(seconds=10)),
            (TASK_EXECUTED, T0 + timedelta(seconds=20)),
        ]
    finally:
        for scheduler in schedulers.values():
            if scheduler.running:
                scheduler.shutdown()
