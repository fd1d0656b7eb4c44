"""Inspection before ``start()``: get_task(s), get_task_info(s) and preview_task_runs show
the pending tasks as they will be scheduled (real times from the scheduler's clock, never
an ``UNSET`` placeholder), each task once, and asking changes nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tickwork.clock import FakeClock
from tickwork.events import TASK_EXECUTED, TASK_MISSED
from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import BaseStore, MemoryStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore
from tickwork.tasks import UNSET

T0 = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)


def job(label: str = "") -> None:
    """The task body."""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def make(clock: FakeClock, store: BaseStore | None = None) -> BackgroundScheduler:
    return BackgroundScheduler(
        timezone="UTC",
        clock=clock,
        stores={"default": store or MemoryStore()},
        executors={"default": DebugExecutor()},
    )


@pytest.fixture
def scheduler(clock: FakeClock) -> Iterator[BackgroundScheduler]:
    scheduler = make(clock)
    yield scheduler
    if scheduler.running:
        scheduler.shutdown(wait=False)


def test_preview_before_start(scheduler: BackgroundScheduler) -> None:
    scheduler.add_task(job, "interval", seconds=10, id="a")
    # it crashed: '_Unset' object has no attribute ...
    assert scheduler.preview_task_runs("a", 3) == [
        T0 + timedelta(seconds=10),
        T0 + timedelta(seconds=20),
        T0 + timedelta(seconds=30),
    ]
    scheduler.add_task(job, "cron", minute="*/5", id="c")
    assert scheduler.preview_task_runs("c", 2) == [
        datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 10, tzinfo=UTC),
    ]


def test_infos_before_start_show_real_times(scheduler: BackgroundScheduler) -> None:
    scheduler.add_task(job, "interval", seconds=10, id="a")
    scheduler.add_task(job, id="now")  # no trigger: runs once, at start
    scheduler.add_task(job, "interval", seconds=10, id="paused", next_run_time=None)
    info = scheduler.get_task_info("a")
    assert info["next_run_time"] == T0 + timedelta(seconds=10)
    assert info["pending"] is True
    infos = {i["id"]: i for i in scheduler.get_task_infos()}
    assert infos["a"]["next_run_time"] == T0 + timedelta(seconds=10)
    assert infos["now"]["next_run_time"] == T0
    assert infos["paused"]["next_run_time"] is None
    assert infos["paused"]["paused"] is True
    assert "UNSET" not in repr(infos)
    shown = scheduler.get_task("a")
    assert shown is not None
    assert shown.next_run_time == T0 + timedelta(seconds=10)
    assert "next=2026-01-01T00:00:40" in repr(shown)
    assert [t.next_run_time for t in scheduler.get_tasks()] == [
        T0 + timedelta(seconds=10),
        T0,
        None,
    ]


def test_asking_before_start_changes_nothing(clock: FakeClock) -> None:
    """A task to run "now" is shown with the clock's now, and still runs at start, when
    the clock has moved on: the preview did not fix its time (a date trigger without
    run_at takes the first time it is asked)."""
    scheduler = make(clock)
    events: list[Any] = []
    scheduler.add_listener(events.append, TASK_EXECUTED | TASK_MISSED)
    task = scheduler.add_task(job, id="now")
    assert scheduler.preview_task_runs("now") == [T0]
    assert scheduler.get_task_info("now")["next_run_time"] == T0
    assert task.next_run_time is UNSET  # the task added is untouched
    clock.advance(timedelta(seconds=5))
    scheduler.start()
    try:
        deadline = time.monotonic() + 5
        while not events and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        scheduler.shutdown()
    assert [(e.code, e.scheduled_run_time) for e in events] == [
        (TASK_EXECUTED, T0 + timedelta(seconds=5))
    ]


def test_a_pending_task_is_listed_once_when_its_store_has_it_too(clock: FakeClock) -> None:
    """The memory store keeps its tasks over a shutdown: a task added again before the
    next start (with replace_existing) was listed twice, pending and stored."""
    scheduler = make(clock)
    scheduler.add_task(job, "interval", seconds=10, id="a")
    scheduler.add_task(job, "interval", seconds=10, id="b")
    scheduler.start()
    scheduler.shutdown()
    scheduler.add_task(job, "interval", seconds=20, id="a", replace_existing=True)
    assert sorted(t.id for t in scheduler.get_tasks()) == ["a", "b"]
    infos = {i["id"]: i for i in scheduler.get_task_infos()}
    assert len(scheduler.get_task_infos()) == 2
    assert infos["a"]["pending"] is True
    assert infos["b"]["pending"] is False
    assert infos["a"]["trigger"] == "IntervalTrigger(interval=0:00:20)"
    assert scheduler.get_task_info("a")["trigger"] == "IntervalTrigger(interval=0:00:20)"


def test_before_start_the_conflict_is_shown_as_start_will_settle_it(clock: FakeClock) -> None:
    scheduler = make(clock)
    scheduler.add_task(job, "interval", seconds=10, id="same", args=["old"])
    scheduler.add_task(job, "interval", seconds=10, id="kept", args=["old"])
    scheduler.start()
    scheduler.shutdown()
    clock.advance(timedelta(seconds=3))
    # the same trigger: the stored next run time stays
    scheduler.add_task(job, "interval", seconds=10, id="same", args=["new"], replace_existing=True)
    # "keep": the stored task stays as it is
    scheduler.add_task(
        job, "interval", seconds=99, id="kept", args=["new"], replace_existing="keep"
    )
    same = scheduler.get_task_info("same")
    assert same["next_run_time"] == T0 + timedelta(seconds=10)
    assert same["pending"] is True
    kept = scheduler.get_task("kept")
    assert kept is not None
    assert kept.args == ("old",)
    assert scheduler.get_task_info("kept")["pending"] is False
    assert scheduler.preview_task_runs("kept", 1) == [T0 + timedelta(seconds=10)]
    assert len(scheduler.get_tasks()) == 2
    scheduler.start()
    try:
        same_task, kept_task = scheduler.get_task("same"), scheduler.get_task("kept")
        assert same_task is not None
        assert same_task.args == ("new",)
        assert same_task.next_run_time == T0 + timedelta(seconds=10)
        assert kept_task is not None
        assert kept_task.args == ("old",)
    finally:
        scheduler.shutdown()


def test_inspection_before_start_with_a_fresh_sql_store(clock: FakeClock, tmp_path: Path) -> None:
    """A SQL store is set up at start(): before that its table may not exist. That used
    to fail get_tasks with "no such table"; there are no stored tasks yet."""
    store = SQLAlchemyStore(f"sqlite:///{tmp_path / 'tasks.sqlite'}")
    scheduler = make(clock, store)
    scheduler.add_task("tickwork.utils:local_timezone", "interval", seconds=10, id="a")
    assert [t.id for t in scheduler.get_tasks()] == ["a"]
    assert scheduler.get_task_infos()[0]["next_run_time"] == T0 + timedelta(seconds=10)
    assert scheduler.get_task("missing") is None
    scheduler.start()
    try:
        assert [t.id for t in scheduler.get_tasks()] == ["a"]
    finally:
        scheduler.shutdown()
