"""Deploying: what a restart does to runs that fell due while the program was down.

A fake clock and a SQLite file stand in for a real deployment: the first scheduler runs
at 00:01, the program is "down" until 00:04:30, and a second scheduler on the same file
starts. The example runs in about a second.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tickwork import AsyncIOScheduler, FakeClock
from tickwork.events import TASK_EXECUTED, TASK_MISSED
from tickwork.executors import DebugExecutor

clock = FakeClock(datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC))
outcomes: list[tuple[str, str, str]] = []


def record(event: Any) -> None:
    what = "ran" if event.code == TASK_EXECUTED else "missed"
    outcomes.append((event.task_id, what, event.scheduled_run_time.strftime("%H:%M")))


def refresh() -> None:
    pass


def new_scheduler(url: str) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        stores={"default": {"type": "sqlalchemy", "url": url}},
        executors={"default": DebugExecutor()},
        timezone="UTC",
        clock=clock,
    )
    scheduler.add_listener(record, TASK_EXECUTED | TASK_MISSED)
    return scheduler


async def wait_for(condition: Callable[[], bool]) -> None:
    """The SQL store is processed in a worker thread: wait until its pass has reported."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, outcomes
        await asyncio.sleep(0.01)


# Three tasks that run every minute, with different rules for late runs.
TASKS: dict[str, dict[str, Any]] = {
    "default-rules": {},  # mistrigger_grace_time=1.0, coalesce=True
    "catch-up-once": {"mistrigger_grace_time": None},
    "catch-up-each": {"mistrigger_grace_time": None, "coalesce": False},
}


def add_tasks(scheduler: AsyncIOScheduler, only_missing: bool = False) -> None:
    for task_id, rules in TASKS.items():
        if only_missing and scheduler.get_task(task_id) is not None:
            continue  # in the store already: keep it, and its next run time
        scheduler.add_task(refresh, "cron", minute="*", id=task_id, replace_existing=True, **rules)


async def first_run(url: str) -> None:
    scheduler = new_scheduler(url)
    add_tasks(scheduler)
    async with scheduler:
        clock.advance(timedelta(seconds=30))  # 00:01: each task runs once
        await wait_for(lambda: len(outcomes) == 3)
    outcomes.clear()
    clock.advance(timedelta(minutes=3, seconds=30))  # down from 00:01 to 00:04:30


async def restart_replacing(url: str) -> None:
    # Re-adding with replace_existing=True gives each task a new schedule, counted from
    # now: the runs of 00:02, 00:03 and 00:04 are neither run nor reported.
    scheduler = new_scheduler(url)
    add_tasks(scheduler)
    async with scheduler:
        await asyncio.sleep(0.3)
        assert outcomes == []
        assert all(
            task.next_run_time == clock.now().replace(minute=5, second=0)
            for task in scheduler.get_tasks()
        )


async def restart_keeping(url: str) -> None:
    # Start paused, add only the tasks the store does not have, then resume: the stored
    # tasks keep their next run time, and what fell due while the program was down
    # follows each task's mistrigger_grace_time and coalesce.
    scheduler = new_scheduler(url)
    scheduler.start(paused=True)  # the stored tasks are loaded, nothing runs yet
    add_tasks(scheduler, only_missing=True)
    scheduler.resume()
    await wait_for(lambda: len(outcomes) == 5)
    await scheduler.shutdown_async()
    assert sorted(outcomes) == [
        ("catch-up-each", "ran", "00:02"),  # coalesce=False: every due run, oldest first
        ("catch-up-each", "ran", "00:03"),
        ("catch-up-each", "ran", "00:04"),
        ("catch-up-once", "ran", "00:04"),  # coalesce=True: the due runs fold into one
        ("default-rules", "missed", "00:04"),  # 30 s late, more than the 1 s grace time
    ]


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        await first_run(f"sqlite:///{directory}/replacing.sqlite")
        await restart_replacing(f"sqlite:///{directory}/replacing.sqlite")
        clock.set(datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC))
        await first_run(f"sqlite:///{directory}/keeping.sqlite")
        await restart_keeping(f"sqlite:///{directory}/keeping.sqlite")


asyncio.run(main())
