"""The shared-store pass in one process, on a SQLite file: two schedulers, exact
outcomes (max_instances over both, take-over of an abandoned run, a paused scheduler
keeping its runs, shutdown recording ended runs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fleet_tasks
import pytest

from tickwork.clock import Clock, FakeClock
from tickwork.events import (
    TASK_EXECUTED,
    TASK_MAX_INSTANCES,
    TASK_MISSED,
    TASK_SUBMITTED,
)
from tickwork.executors import ThreadPoolExecutor
from tickwork.schedulers import BackgroundScheduler
from tickwork.stores.sqlalchemy import SQLAlchemyStore
from tickwork.tasks import Task
from tickwork.triggers import DateTrigger, IntervalTrigger

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CODES = TASK_EXECUTED | TASK_MAX_INSTANCES | TASK_MISSED | TASK_SUBMITTED


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


@pytest.fixture(autouse=True)
def gate() -> Iterator[None]:
    fleet_tasks.GATE.clear()
    yield
    fleet_tasks.GATE.set()  # never leave a blocked run behind


class Fleet:
    """Schedulers on one SQLite file; every event of every one in ``events``."""

    def __init__(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
        self.events: list[tuple[str, Any]] = []
        self.schedulers: list[BackgroundScheduler] = []

    def store(self, lease_time: float = 10.0) -> SQLAlchemyStore:
        return SQLAlchemyStore(self.url, lease_time=lease_time)

    def make(
        self, name: str, clock: Clock | None = None, lease_time: float = 10.0
    ) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(
            clock=clock,
            timezone="UTC",
            identity=name,
            stores={"default": self.store(lease_time)},
            executors={"default": ThreadPoolExecutor()},
        )
        scheduler.add_listener(lambda event: self.events.append((name, event)), CODES)
        self.schedulers.append(scheduler)
        return scheduler

    def seen(self, code: int) -> list[tuple[str, datetime]]:
        return [
            (
                name,
                e.scheduled_run_time
                if hasattr(e, "scheduled_run_time")
                else e.scheduled_run_times[-1],
            )
            for name, e in self.events
            if e.code == code
        ]

    def close(self) -> None:
        fleet_tasks.GATE.set()
        for scheduler in self.schedulers:
            if scheduler.running:
                scheduler.shutdown()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    made = Fleet(tmp_path)
    yield made
    made.close()


def add(fleet: Fleet, *tasks: Task) -> None:
    store = fleet.store()
    store.start("setup")
    store.add_tasks(list(tasks))
    store.shutdown()


def test_max_instances_counts_the_runs_of_every_scheduler(fleet: Fleet) -> None:
    clock = FakeClock(T0)
    trigger = IntervalTrigger(seconds=10, start_at=T0 + timedelta(seconds=10), timezone="UTC")
    add(
        fleet,
        Task(
            "fleet_tasks:blocker",
            trigger,
            id="t",
            max_instances=1,
            coalesce=True,
            mistrigger_grace_time=None,
            next_run_time=T0 + timedelta(seconds=10),
        ),
    )
    a, b = fleet.make("a", clock), fleet.make("b", clock)
    a.start()
    b.start()
    clock.advance(seconds=10)
    wait_until(lambda: len(fleet.seen(TASK_SUBMITTED)) == 1)
    ((runner, _),) = fleet.seen(TASK_SUBMITTED)
    clock.advance(seconds=10)  # the first run still blocks: whoever claims, it is refused
    wait_until(lambda: len(fleet.seen(TASK_MAX_INSTANCES)) == 1)
    assert fleet.seen(TASK_MAX_INSTANCES)[0][1] == T0 + timedelta(seconds=20)
    fleet_tasks.GATE.set()
    wait_until(lambda: len(fleet.seen(TASK_EXECUTED)) == 1)
    check = fleet.store()
    check.start("check")
    wait_until(lambda: check.count_runs(["t"]) == {})  # the end is recorded at once
    check.shutdown()
    clock.advance(seconds=10)
    wait_until(lambda: len(fleet.seen(TASK_EXECUTED)) == 2)
    assert [when for _, when in fleet.seen(TASK_EXECUTED)] == [
        T0 + timedelta(seconds=10),
        T0 + timedelta(seconds=30),
    ]
    assert runner in ("a", "b")


@pytest.mark.parametrize(("grace", "outcome"), [(None, TASK_EXECUTED), (5.0, TASK_MISSED)])
def test_an_abandoned_run_is_run_again_within_its_grace_time_else_reported(
    fleet: Fleet, grace: float | None, outcome: int
) -> None:
    # A scheduler "dead" claimed the task, wrote it back with a record of its run at
    # T0 + 10 s, and died: the record expires at T0 + 10 s + lease.
    trigger = IntervalTrigger(seconds=60, start_at=T0 + timedelta(seconds=10), timezone="UTC")
    task = Task(
        "fleet_tasks:quick",
        trigger,
        id="t",
        max_instances=1,
        coalesce=True,
        mistrigger_grace_time=grace,
        next_run_time=T0 + timedelta(seconds=10),
    )
    add(fleet, task)
    store = fleet.store()
    store.start("dead")
    due = T0 + timedelta(seconds=10)
    store.acquire_due_tasks(due, 10, "dead", timedelta(seconds=10))
    advanced = Task(
        "fleet_tasks:quick",
        trigger,
        id="t",
        max_instances=1,
        coalesce=True,
        mistrigger_grace_time=grace,
        next_run_time=T0 + timedelta(seconds=70),
    )
    store.release_tasks("dead", [advanced], [], [(task, due)], due + timedelta(seconds=10))
    store.shutdown()

    clock = FakeClock(due + timedelta(seconds=9))
    heir = fleet.make("heir", clock)
    heir.start()
    time.sleep(0.3)
    assert fleet.events == []  # not expired yet: it may still be running elsewhere
    clock.advance(seconds=2)  # 11 s after the slot, the record expired 1 s ago
    wait_until(lambda: len(fleet.seen(outcome)) == 1)
    assert fleet.seen(outcome) == [("heir", due)]
    check = fleet.store()
    check.start("check")
    wait_until(lambda: check.count_runs(["t"]) == {})
    check.shutdown()


def test_a_paused_scheduler_keeps_its_runs_from_being_taken_over(fleet: Fleet) -> None:
    lease = 0.4  # renewed every 0.13 s
    a = fleet.make("a", lease_time=lease)
    a.start()
    a.add_task(
        "fleet_tasks:blocker", DateTrigger(datetime.now(UTC)), id="t", mistrigger_grace_time=None
    )
    wait_until(lambda: len(fleet.seen(TASK_SUBMITTED)) == 1)
    a.pause()  # no passes any more, yet the run goes on
    b = fleet.make("b", lease_time=lease)
    b.start()
    time.sleep(5 * lease)
    assert fleet.seen(TASK_SUBMITTED) == [("a", fleet.seen(TASK_SUBMITTED)[0][1])]
    fleet_tasks.GATE.set()
    wait_until(lambda: len(fleet.seen(TASK_EXECUTED)) == 1)
    time.sleep(2 * lease)
    assert [name for name, _ in fleet.events] == ["a", "a"]  # submitted, executed: no more


def test_shutdown_records_the_end_of_runs_it_waited_for(fleet: Fleet) -> None:
    a = fleet.make("a")
    a.start()
    a.add_task(
        "fleet_tasks:blocker", DateTrigger(datetime.now(UTC)), id="t", mistrigger_grace_time=None
    )
    wait_until(lambda: len(fleet.seen(TASK_SUBMITTED)) == 1)
    check = fleet.store()
    check.start("check")
    assert check.count_runs(["t"]) == {"t": 1}
    opener = threading.Timer(0.2, fleet_tasks.GATE.set)  # the run ends during shutdown
    opener.start()
    a.shutdown(wait=True)
    opener.join()
    assert check.count_runs(["t"]) == {}
    check.shutdown()
