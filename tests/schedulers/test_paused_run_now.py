"""A run asked for while the scheduler is paused waits for resume(), however long the
pause: a task added then to run "now" (no trigger, a date trigger without ``run_at``,
``next_run_time`` now) used to get the 1 s default grace time and be reported missed at
resume, never run. Runs that fall due during a pause by a task's schedule still follow
the grace rule, and ``run_task`` runs at once even while paused."""

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
from tickwork.tasks import Task
from tickwork.triggers import DateTrigger

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def job() -> None:
    """The task body (module level: the SQL store keeps it by reference)."""


class Paused:
    """A scheduler started paused on a fake clock, recording what ran and was missed."""

    def __init__(self, store: BaseStore) -> None:
        self.clock = FakeClock(T0)
        self.events: list[Any] = []
        self.scheduler = BackgroundScheduler(
            timezone="UTC",
            clock=self.clock,
            stores={"default": store},
            executors={"default": DebugExecutor()},
        )
        self.scheduler.add_listener(self.events.append, TASK_EXECUTED | TASK_MISSED)

    def outcomes(self) -> dict[str, str]:
        return {e.task_id: "ran" if e.code == TASK_EXECUTED else "missed" for e in self.events}

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 5
        while len(self.events) < count:
            assert time.monotonic() < deadline, self.outcomes()
            time.sleep(0.01)
        time.sleep(0.1)  # and nothing more


@pytest.fixture(params=["memory", "sqlite"])
def paused(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Paused]:
    store: BaseStore = (
        MemoryStore()
        if request.param == "memory"
        else SQLAlchemyStore(f"sqlite:///{tmp_path / 'tasks.sqlite'}")
    )
    setup = Paused(store)
    setup.scheduler.start(paused=True)
    yield setup
    if setup.scheduler.running:
        setup.scheduler.shutdown()


def test_runs_asked_for_during_a_pause_run_at_resume(paused: Paused) -> None:
    scheduler, clock = paused.scheduler, paused.clock
    scheduler.add_task(job, "interval", hours=1, id="scheduled")  # first run at 01:00
    clock.advance(timedelta(seconds=30))
    scheduler.add_task(job, id="no-trigger")
    scheduler.add_task(job, "date", id="date-now")
    scheduler.add_task(job, "interval", hours=1, next_run_time=clock.now(), id="given-now")
    scheduler.add_tasks([Task(job, DateTrigger(), id="bulk")])
    late = clock.now() - timedelta(minutes=5)
    scheduler.add_task(job, "date", run_at=late, id="already-late")
    clock.advance(timedelta(hours=1, minutes=10))  # a long pause
    scheduler.resume()
    paused.wait_for(6)
    assert paused.outcomes() == {
        "no-trigger": "ran",
        "date-now": "ran",
        "given-now": "ran",
        "bulk": "ran",
        # asked for a time already past its grace time: missed, as when running
        "already-late": "missed",
        # fell due during the pause by its schedule: the grace rule, as documented
        "scheduled": "missed",
    }


def test_the_hold_ends_with_the_run(paused: Paused) -> None:
    """A held run is decided once without a grace time; the task's next runs follow its
    rules again."""
    scheduler, clock = paused.scheduler, paused.clock
    scheduler.add_task(job, "interval", minutes=1, next_run_time=clock.now(), id="t")
    clock.advance(timedelta(minutes=5, seconds=30))
    scheduler.resume()
    paused.wait_for(1)
    assert paused.outcomes() == {"t": "ran"}
    task = scheduler.get_task("t")
    assert task is not None
    assert task.next_run_time == T0 + timedelta(minutes=6)
    scheduler.pause()
    clock.advance(timedelta(minutes=2))
    scheduler.resume()
    paused.wait_for(2)
    assert [e.code for e in paused.events] == [TASK_EXECUTED, TASK_MISSED]


def test_a_held_run_that_is_rescheduled_or_deleted_is_not_held(paused: Paused) -> None:
    scheduler, clock = paused.scheduler, paused.clock
    scheduler.add_task(job, id="deleted")
    scheduler.delete_task("deleted")
    scheduler.add_task(job, "interval", minutes=1, next_run_time=clock.now(), id="moved")
    scheduler.update_task("moved", next_run_time=clock.now() + timedelta(seconds=10))
    clock.advance(timedelta(minutes=2, seconds=30))
    scheduler.add_task(job, id="deleted", next_run_time=T0)  # same id, a past run time
    scheduler.resume()
    paused.wait_for(2)
    assert paused.outcomes() == {"moved": "missed", "deleted": "missed"}


def test_run_task_runs_at_once_while_paused(paused: Paused) -> None:
    scheduler = paused.scheduler
    scheduler.add_task(job, "interval", hours=1, id="t")
    scheduler.run_task("t")
    paused.wait_for(1)
    assert paused.outcomes() == {"t": "ran"}
