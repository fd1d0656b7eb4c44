"""Testing: drive time by hand with FakeClock; run tasks inline with DebugExecutor.

Written as a pytest test (with pytest-asyncio); run as a script it calls the test itself.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tickwork import AsyncIOScheduler, FakeClock
from tickwork.executors import DebugExecutor

# -- the code under test ----------------------------------------------------------------

purged: list[str] = []


def purge_sessions() -> None:
    purged.append("purged")


def schedule_maintenance(scheduler: AsyncIOScheduler) -> None:
    scheduler.add_task(purge_sessions, "cron", hour=3, minute=0, id="purge")


# -- the test -----------------------------------------------------------------------------


async def settle() -> None:
    """Give the scheduler's loop a few turns to run the pass the clock move triggered."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_sessions_are_purged_nightly_at_three() -> None:
    clock = FakeClock(datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    scheduler = AsyncIOScheduler(
        clock=clock,  # the scheduler asks this clock for the time, never the system
        executors={"default": DebugExecutor()},  # runs each task inline, deterministically
        timezone="UTC",
    )
    schedule_maintenance(scheduler)
    async with scheduler:
        assert scheduler.preview_task_runs("purge", 2) == [
            datetime(2026, 5, 2, 3, 0, tzinfo=UTC),
            datetime(2026, 5, 3, 3, 0, tzinfo=UTC),
        ]
        clock.set(datetime(2026, 5, 2, 2, 59, tzinfo=UTC))  # moving the clock wakes the scheduler
        await settle()
        assert purged == []
        clock.set(datetime(2026, 5, 2, 3, 0, tzinfo=UTC))
        await settle()
        assert len(purged) == 1
        task = scheduler.get_task("purge")
        assert task is not None
        assert task.next_run_time == datetime(2026, 5, 3, 3, 0, tzinfo=UTC)


if __name__ == "__main__":
    asyncio.run(test_sessions_are_purged_nightly_at_three())
