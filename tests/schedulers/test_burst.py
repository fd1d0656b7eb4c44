"""The burst trap: asyncz and APScheduler 3 block the event loop for about a second when
10,000 tasks come due at once, and then report most of those runs as missed."""

from __future__ import annotations

import gc
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from scheduler_helpers import worst_loop_lag_until

from tickwork.events import TASK_EXECUTED, TASK_MISSED
from tickwork.schedulers import AsyncIOScheduler

BURST = 10_000


@pytest.mark.parametrize("kind", ["coroutine", "function"])
async def test_burst_keeps_the_loop_responsive_and_misses_nothing(kind: str) -> None:
    ran: Counter[str] = Counter()
    missed: list[object] = []

    async def coroutine_job(name: str) -> None:
        ran[name] += 1

    def function_job(name: str) -> None:
        ran[name] += 1

    # What earlier tests left behind is collected now, not in a full collection during the
    # burst: that pause (seen at 276 ms late in a long run) is not this scheduler's.
    gc.collect()
    scheduler = AsyncIOScheduler()
    scheduler.add_listener(missed.append, TASK_MISSED)
    executed: list[object] = []
    scheduler.add_listener(executed.append, TASK_EXECUTED)
    scheduler.start()
    due = datetime.now(UTC) + timedelta(seconds=1)
    job = coroutine_job if kind == "coroutine" else function_job
    for index in range(BURST):
        # Default run rules: coalesce on, max_instances 1, 1 s grace.
        scheduler.add_task(job, "date", run_at=due, args=[f"t{index}"], id=f"t{index}")

    worst_lag = await worst_loop_lag_until(lambda: len(executed) >= BURST)
    await scheduler.shutdown_async()

    assert len(ran) == BURST, "every task ran"
    assert set(ran.values()) == {1}, "and each exactly once"
    assert missed == []
    # asyncz/APScheduler stall the loop ~1 s here; a quarter of that is a generous bound
    # for a loaded CI machine (typical: 20-60 ms). The figures live in bench/.
    assert worst_lag < 0.25, f"the event loop stalled for {worst_lag * 1000:.0f} ms"
