"""Hand-overs between processes, in one process on a fake clock (fast and exact): the
lock holder's recorded progress, a take-over that skips what it ran, a new process that
gives back the slots that fell due before it started (a gunicorn reload), and a
replace_existing re-add that names the runs it drops. ``test_gunicorn_reload.py`` does
the same with real processes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tickwork.clock import FakeClock
from tickwork.events import TASK_EXECUTED, TASK_MISSED
from tickwork.executors import DebugExecutor
from tickwork.locks import FileLockProtected
from tickwork.schedulers import BackgroundScheduler
from tickwork.schedulers._lock_handover import LOOK_BACK

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


def holder_then_heir(
    tmp_path: Path, gap: timedelta, **rules: Any
) -> tuple[list[Any], list[Any], BackgroundScheduler]:
    """A holder runs the slot at T0 + 10 s and stops; ``gap`` later (no process holds
    the lock meanwhile) a new process starts, adds the same task and takes the lock, as
    a worker started by a gunicorn reload does. Returns (the holder's events, the
    heir's events once it has handled what fell due, the running heir)."""
    clock = FakeClock(T0)

    def make(events: list[Any]) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(
            clock=clock,
            timezone="UTC",
            lock_path=str(tmp_path / "{store}.lock"),
            executors={"default": DebugExecutor()},
        )
        scheduler.add_listener(events.append, TASK_EXECUTED | TASK_MISSED)
        scheduler.add_task(
            noop, "interval", seconds=10, start_at=T0 + timedelta(seconds=10), id="t", **rules
        )
        return scheduler

    first: list[Any] = []
    holder = make(first)
    holder.start()
    try:
        clock.advance(seconds=10)
        wait_until(lambda: len(first) == 1)
    finally:
        holder.shutdown()
    clock.advance(gap)
    second: list[Any] = []
    heir = make(second)
    # Its own copy of "t" starts at the first slot after now: the slots of the gap are
    # in no store but the (stopped) holder's.
    heir.start()
    try:
        wait_until(lambda: bool(second))
        time.sleep(0.1)  # and whatever else it reports meanwhile
    except BaseException:
        heir.shutdown()
        raise
    return first, second, heir


def outcomes(events: list[Any]) -> list[tuple[str, float]]:
    names = {TASK_EXECUTED: "ran", TASK_MISSED: "missed"}
    return [
        (names[e.code], (e.scheduled_run_time - T0).total_seconds())
        for e in sorted(events, key=lambda e: e.scheduled_run_time)
    ]


def test_a_new_process_runs_a_slot_that_fell_due_before_it_started(tmp_path: Path) -> None:
    first, second, heir = holder_then_heir(tmp_path, timedelta(seconds=10.5))
    try:
        assert outcomes(first) == [("ran", 10)]
        # T0 + 20 s fell due while nobody held the lock; 0.5 s late is within the grace
        # time. (Before the fix the heir went straight to T0 + 30 s: lost, no trace.)
        assert outcomes(second) == [("ran", 20)]
        assert heir.get_task("t").next_run_time == T0 + timedelta(seconds=30)
    finally:
        heir.shutdown()


def test_a_new_process_reports_gap_slots_past_their_grace_time(tmp_path: Path) -> None:
    _, second, heir = holder_then_heir(tmp_path, timedelta(seconds=25), coalesce=False)
    try:
        # T0 + 20 s and 30 s fell due in the gap, more than 1 s ago: reported, not run.
        assert outcomes(second) == [("missed", 20), ("missed", 30)]
    finally:
        heir.shutdown()


def test_a_long_gap_is_named_in_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "tickwork")
    _, second, heir = holder_then_heir(tmp_path, LOOK_BACK + timedelta(seconds=15), coalesce=False)
    try:
        now = 10 + LOOK_BACK.total_seconds() + 15
        since = now - LOOK_BACK.total_seconds()
        wait_until(lambda: len(second) == 30)  # the slots of the last 5 min, one by one
        assert outcomes(second) == [("missed", since + 5 + 10 * i) for i in range(30)]
        (warning,) = [
            r.getMessage()
            for r in caplog.records
            if r.levelno == logging.WARNING and "more than" in r.getMessage()
        ]
        older = (T0 + timedelta(seconds=20)).isoformat()
        until = (T0 + timedelta(seconds=since + 5)).isoformat()
        assert f"runs from {older} until {until} fell due while no process held" in warning
    finally:
        heir.shutdown()


def test_a_reload_re_add_keeps_the_stored_schedule_and_reports_the_gap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A shared store outlives its schedulers: at a reload the new workers re-add their
    tasks with replace_existing=True. The trigger is the same, so the stored next run
    time stays: the runs nobody processed meanwhile follow the run rules (here too late
    for the 1 s grace: coalesced and reported missed), never dropped without a word."""
    clock = FakeClock(T0)
    url = f"sqlite:///{tmp_path / 'tasks.sqlite'}"
    events: list[Any] = []

    def make() -> BackgroundScheduler:
        scheduler = BackgroundScheduler(
            clock=clock,
            timezone="UTC",
            stores={"default": {"type": "sqlalchemy", "url": url}},
            executors={"default": DebugExecutor()},
        )
        scheduler.add_listener(events.append, TASK_EXECUTED | TASK_MISSED)
        scheduler.add_task(
            "fleet_tasks:quick",
            "interval",
            seconds=10,
            start_at=T0 + timedelta(seconds=10),
            id="t",
            replace_existing=True,
        )
        return scheduler

    first = make()
    first.start()
    try:
        clock.advance(seconds=10)
        wait_until(lambda: len(events) == 1)
    finally:
        first.shutdown()
    clock.advance(seconds=25)  # T0 + 20 s and 30 s fall due; no scheduler runs
    caplog.set_level(logging.WARNING, "tickwork")
    second = make()
    second.start()
    try:
        wait_until(lambda: len(events) == 2)
        assert second.get_task("t").next_run_time == T0 + timedelta(seconds=40)
    finally:
        second.shutdown()
    assert outcomes(events) == [("ran", 10), ("missed", 30)]
    assert "was missed by" in caplog.text
