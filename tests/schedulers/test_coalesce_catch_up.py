"""A coalesced task a day behind runs once, on every persistent store, whatever the grace.

A 1-second interval whose next run time is a day in the past is 86,400 fire times
behind. With ``coalesce=True`` they fold into one run (the latest fire time at or before
now), and the next run time moves past now, so the task does not catch up run after run:
before ``Planner.fold`` took the latest fire time, SQLite gave about 87 back-to-back runs
here. Real scheduler, real stores, the real clock: the test counts ``TASK_EXECUTED``
events for about 1.5 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tickwork.events import TASK_EXECUTED, TaskExecutionEvent
from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler
from tickwork.stores.base import BaseStore
from tickwork.stores.file import FileStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore

#: How long the runs are counted: the one catch-up run comes at once; a scheduler that
#: catches up one fire time per pass would show dozens by then.
WATCH = 1.5


def tick() -> None:
    """The task body (a module-level function: persistent stores keep a reference)."""


STORES: dict[str, Callable[[Path], BaseStore]] = {
    "sqlite": lambda tmp_path: SQLAlchemyStore(f"sqlite:///{tmp_path}/x.db"),
    "file": lambda tmp_path: FileStore(tmp_path / "tasks"),
}


@pytest.fixture(params=sorted(STORES))
def scheduler(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackgroundScheduler]:
    store = STORES[request.param](tmp_path)
    made = BackgroundScheduler(
        stores={"default": store}, executors={"default": DebugExecutor()}, timezone="UTC"
    )
    yield made
    if made.running:
        made.shutdown(wait=False)


@pytest.mark.parametrize("grace", [None, 1.0])
def test_a_day_behind_folds_into_one_run(
    scheduler: BackgroundScheduler, grace: float | None
) -> None:
    runs: list[datetime] = []
    lock = threading.Lock()

    def executed(event: object) -> None:
        assert isinstance(event, TaskExecutionEvent)
        if event.task_id == "catch-up":
            with lock:
                runs.append(event.scheduled_run_time)

    scheduler.add_listener(executed, TASK_EXECUTED)
    scheduler.start(paused=True)
    day_ago = datetime.now(UTC) - timedelta(days=1)
    scheduler.add_task(
        tick,
        "interval",
        seconds=1,
        id="catch-up",
        coalesce=True,
        mistrigger_grace_time=grace,
        next_run_time=day_ago,
    )
    resumed = datetime.now(UTC)
    scheduler.resume()
    time.sleep(WATCH)
    scheduler.pause()
    with lock:
        caught_up = [run for run in runs if run < resumed]
    # One catch-up run for the whole day, at its latest fire time (not the first one),
    # and then the task is back on schedule: at most one run per second since.
    assert len(caught_up) == 1, f"{len(caught_up)} catch-up runs: {caught_up[:5]}"
    assert caught_up[0] > resumed - timedelta(seconds=2)
    assert len(runs) <= 1 + WATCH + 1
    # ... and its next run time left the backlog behind: after the moment it resumed.
    task = scheduler.get_task("catch-up")
    assert task is not None
    assert task.next_run_time is not None
    assert task.next_run_time > resumed
