"""Getting started: coalesce, mistrigger_grace_time, max_instances, paused tasks and
errors, shown on a fake clock so that nothing waits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tickwork import AsyncIOScheduler, FakeClock
from tickwork.events import TASK_ERROR, TASK_EXECUTED, TASK_MAX_INSTANCES, TASK_MISSED
from tickwork.executors import DebugExecutor

clock = FakeClock(datetime(2026, 1, 1, 0, 0, tzinfo=UTC))
scheduler = AsyncIOScheduler(clock=clock, executors={"default": DebugExecutor()}, timezone="UTC")
outcomes: list[tuple[str, str, str]] = []
NAMES = {
    TASK_EXECUTED: "ran",
    TASK_MISSED: "missed",
    TASK_MAX_INSTANCES: "skipped",
    TASK_ERROR: "error",
}


def record(event: Any) -> None:
    times = getattr(event, "scheduled_run_times", None) or [event.scheduled_run_time]
    outcomes.append((event.task_id, NAMES[event.code], times[-1].strftime("%H:%M")))


scheduler.add_listener(record, TASK_EXECUTED | TASK_MISSED | TASK_MAX_INSTANCES | TASK_ERROR)


def seen(task_id: str) -> list[tuple[str, str]]:
    return [(what, when) for tid, what, when in outcomes if tid == task_id]


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)  # let the scheduler's pass (and the runs it starts) happen


async def advance(minutes: int) -> None:
    """Move the fake clock; the scheduler wakes up and runs what came due."""
    clock.advance(timedelta(minutes=minutes))
    await settle()


def work() -> None:
    pass


# Every task below runs every 10 minutes: first at 00:10. The scheduler then "stalls"
# until 00:31, so runs at 00:10, 00:20 and 00:30 are all due when it picks them up.
every_10_min: dict[str, Any] = {"trigger": "interval", "minutes": 10}

# coalesce=True folds the due runs into one: the last (00:30).
scheduler.add_task(work, id="folded", coalesce=True, mistrigger_grace_time=None, **every_10_min)
# coalesce=False runs each of them, oldest first.
scheduler.add_task(work, id="each", coalesce=False, mistrigger_grace_time=None, **every_10_min)
# The grace time is measured when the scheduler picks the run up (00:31): a run later
# than that is missed (TASK_MISSED) instead of run.
scheduler.add_task(work, id="strict", coalesce=False, mistrigger_grace_time=120, **every_10_min)
# With coalesce, only the run it folds into is checked; here it is 60 s late, too late.
scheduler.add_task(work, id="folded-late", coalesce=True, mistrigger_grace_time=30, **every_10_min)


async def main() -> None:
    async with scheduler:
        await advance(31)
        assert seen("folded") == [("ran", "00:30")]
        assert seen("each") == [("ran", "00:10"), ("ran", "00:20"), ("ran", "00:30")]
        assert seen("strict") == [("missed", "00:10"), ("missed", "00:20"), ("ran", "00:30")]
        assert seen("folded-late") == [("missed", "00:30")]
        await max_instances_and_pausing()


# max_instances: a run that is due while max_instances runs of the task are still going
# is skipped, with a TASK_MAX_INSTANCES event. Nothing queues up behind the slow run.
release = asyncio.Event()


async def slow() -> None:
    await release.wait()


def fails() -> None:
    raise RuntimeError("out of paper")


async def max_instances_and_pausing() -> None:  # the clock is at 00:31
    scheduler.add_task(slow, id="slow", max_instances=1, mistrigger_grace_time=None, **every_10_min)
    await advance(10)  # 00:41: the run starts and keeps going
    await advance(10)  # 00:51: still going, so this run is skipped
    release.set()
    await settle()  # the slow run finishes
    await advance(10)  # 01:01: free again
    assert seen("slow") == [("skipped", "00:51"), ("ran", "00:41"), ("ran", "01:01")]

    # next_run_time=None adds the task paused; resume_task() schedules it from now.
    scheduler.add_task(work, id="later", next_run_time=None, **every_10_min)
    await advance(30)
    assert seen("later") == []
    scheduler.resume_task("later")
    await advance(10)
    assert seen("later") == [("ran", "01:41")]

    # An exception is logged with its traceback and reported as TASK_ERROR; the task
    # stays scheduled and the scheduler carries on.
    scheduler.add_task(fails, id="printer", mistrigger_grace_time=None, **every_10_min)
    await advance(10)
    await advance(10)
    assert seen("printer") == [("error", "01:51"), ("error", "02:01")]


asyncio.run(main())
