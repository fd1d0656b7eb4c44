"""Deploying: what a restart does to runs that fell due while the program was down.

A fake clock and a SQLite file stand in for a real deployment: the first scheduler runs
at 00:01, the program is "down" until 00:04:30, and a second scheduler on the same file
starts and adds its tasks again: with the same code, with a changed schedule, and with
``replace_existing="keep"`` (each on a file of its own). The example runs in about a
second.
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
from tickwork.triggers import CronTrigger

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


def add_tasks(
    scheduler: AsyncIOScheduler, minute: str = "*", replace_existing: bool | str = True
) -> None:
    # The program adds its tasks at every start, with fixed ids.
    for task_id, rules in TASKS.items():
        scheduler.add_task(
            refresh, "cron", minute=minute, id=task_id, replace_existing=replace_existing, **rules
        )


async def first_run(url: str) -> None:
    scheduler = new_scheduler(url)
    add_tasks(scheduler)
    async with scheduler:
        clock.advance(timedelta(seconds=30))  # 00:01: each task runs once
        await wait_for(lambda: len(outcomes) == 3)
    outcomes.clear()
    clock.advance(timedelta(minutes=3, seconds=30))  # down from 00:01 to 00:04:30


async def restart_same_code(url: str) -> None:
    # The same code adds the same tasks again (replace_existing=True): each stored task
    # keeps its next run time (00:02), so the runs that fell due while the program was
    # down follow each task's mistrigger_grace_time and coalesce.
    scheduler = new_scheduler(url)
    add_tasks(scheduler)
    async with scheduler:
        await wait_for(lambda: len(outcomes) == 5)
    assert sorted(outcomes) == [
        ("catch-up-each", "ran", "00:02"),  # coalesce=False: every due run, oldest first
        ("catch-up-each", "ran", "00:03"),
        ("catch-up-each", "ran", "00:04"),
        ("catch-up-once", "ran", "00:04"),  # coalesce=True: the due runs fold into one
        ("default-rules", "missed", "00:04"),  # 30 s late, more than the 1 s grace time
    ]


async def restart_new_schedule(url: str) -> None:
    # A new version of the program runs the tasks every 5 minutes: a changed trigger
    # applies from now (first run 00:05). The old schedule's runs of 00:02 to 00:04 are
    # not run; a warning in the log names them.
    scheduler = new_scheduler(url)
    add_tasks(scheduler, minute="*/5")
    async with scheduler:
        await asyncio.sleep(0.3)
        assert outcomes == []
        assert all(
            task.next_run_time == clock.now().replace(minute=5, second=0)
            for task in scheduler.get_tasks()
        )


async def restart_keeping(url: str) -> None:
    # replace_existing="keep": a stored task stays exactly as it is (here: every minute,
    # although this code says every 5 minutes); only tasks the store lacks are added.
    scheduler = new_scheduler(url)
    add_tasks(scheduler, minute="*/5", replace_existing="keep")
    async with scheduler:
        await wait_for(lambda: len(outcomes) == 5)
        every_minute = CronTrigger(minute="*", timezone="UTC")
        assert all(task.trigger == every_minute for task in scheduler.get_tasks())


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        for restart in (restart_same_code, restart_new_schedule, restart_keeping):
            clock.set(datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC))
            url = f"sqlite:///{directory}/{restart.__name__}.sqlite"
            await first_run(url)
            await restart(url)
            outcomes.clear()


asyncio.run(main())
