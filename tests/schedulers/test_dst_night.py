"""End to end through a DST night: a scheduler on a fake clock, stepped through the night
the clocks go back, runs a daily 01:30 cron task once (APScheduler 3 and asyncz run it
twice), and an hourly one on every real hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from scheduler_helpers import Harness, wait_until

from tickwork.clock import FakeClock
from tickwork.events import TASK_EXECUTED
from tickwork.executors import DebugExecutor

NEW_YORK = ZoneInfo("America/New_York")
# 2026-11-01: at 02:00 EDT the clocks go back to 01:00 EST; 01:30 happens twice.
EVENING = datetime(2026, 10, 31, 22, 0, tzinfo=NEW_YORK)


@pytest.mark.parametrize("harness", ["asyncio", "background"], indirect=True)
async def test_fall_back_night(harness: Harness) -> None:
    clock = FakeClock(EVENING.astimezone(UTC))
    scheduler = harness.make(clock=clock, timezone=NEW_YORK, executors={"default": DebugExecutor()})
    await harness.start(scheduler)
    # No grace limit: the test moves the clock faster than passes run; lateness is not
    # what it checks.
    rules: dict[str, Any] = {"mistrigger_grace_time": None, "coalesce": False}
    scheduler.add_task(print, "cron", hour=1, minute=30, args=["daily"], id="daily", **rules)
    scheduler.add_task(print, "cron", minute=0, args=["hourly"], id="hourly", **rules)

    def runs(task_id: str) -> list[Any]:
        return [e.scheduled_run_time for e in harness.codes(TASK_EXECUTED) if e.task_id == task_id]

    # Step through 8 real hours, 5 minutes at a time, letting each step's runs happen.
    for step in range(1, 8 * 12 + 1):
        clock.set(EVENING.astimezone(UTC) + timedelta(minutes=5 * step))
        expected_hourly = (step * 5) // 60
        await wait_until(lambda expected=expected_hourly: len(runs("hourly")) >= expected)

    await wait_until(lambda: len(runs("hourly")) >= 9 and len(runs("daily")) >= 1)
    await harness.shutdown(scheduler)
    daily = runs("daily")
    assert [t.astimezone(UTC).isoformat() for t in daily] == ["2026-11-01T05:30:00+00:00"]
    hourly_utc = [t.astimezone(UTC).hour for t in runs("hourly")]
    # 22:00 EDT (due at start) .. 01:00 EDT, 01:00 EST (the repeated hour), 02:00 .. 05:00
    # EST: every one of the 9 real hours from 02:00 to 10:00 UTC, none twice.
    assert hourly_utc == [2, 3, 4, 5, 6, 7, 8, 9, 10]
