"""Asyncio schedulers never make the event loop wait on store I/O: passes over stores that
do I/O (here SQLite) run in a worker thread."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scheduler_helpers import wait_until, worst_loop_lag_until

from tickwork.events import TASK_EXECUTED, TASK_MISSED
from tickwork.schedulers import AsyncIOScheduler
from tickwork.stores.sqlalchemy import SQLAlchemyStore
from tickwork.tasks import Task
from tickwork.triggers import DateTrigger

BURST = 1000


class WatchedSQLiteStore(SQLAlchemyStore):
    """A SQLite store that records the threads its pass methods run on."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.pass_threads: set[int] = set()

    def acquire_due_tasks(self, *args: Any, **kwargs: Any) -> list[Task]:
        self.pass_threads.add(threading.get_ident())
        return super().acquire_due_tasks(*args, **kwargs)

    def release_tasks(self, *args: Any, **kwargs: Any) -> None:
        self.pass_threads.add(threading.get_ident())
        super().release_tasks(*args, **kwargs)


async def test_sqlite_burst_runs_off_the_loop(tmp_path: Path) -> None:
    store = WatchedSQLiteStore(url=f"sqlite:///{tmp_path / 'tasks.sqlite'}")
    executed: list[Any] = []
    missed: list[Any] = []
    scheduler = AsyncIOScheduler(stores={"default": store})
    scheduler.add_listener(executed.append, TASK_EXECUTED)
    scheduler.add_listener(missed.append, TASK_MISSED)
    scheduler.start()
    due = datetime.now(UTC) + timedelta(seconds=1.5)
    scheduler.add_tasks(
        [Task("operator:truth", DateTrigger(due), args=[i], id=f"t{i}") for i in range(BURST)]
    )
    worst_lag = await worst_loop_lag_until(lambda: len(executed) >= BURST)
    await wait_until(lambda: scheduler.get_tasks() == [], timeout=10)
    await scheduler.shutdown_async()

    assert len(executed) == BURST
    assert missed == []
    assert store.pass_threads, "the pass used the store"
    assert threading.get_ident() not in store.pass_threads, "store I/O ran on the event loop"
    # Generous for a loaded CI machine; the loop only hands runs to the executor.
    assert worst_lag < 0.25, f"the event loop stalled for {worst_lag * 1000:.0f} ms"
