"""AsyncIOScheduler starts what is due from its timer's own callback, one loop iteration
before its driver could (docs/performance.md, precision)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tickwork.schedulers import AsyncIOScheduler


async def test_a_due_run_starts_before_the_driver_wakes() -> None:
    order: list[str] = []

    async def job() -> None:
        order.append("run")

    scheduler = AsyncIOScheduler(timezone=UTC)
    passes = scheduler._run_pass_async

    async def counted_pass(loop: asyncio.AbstractEventLoop) -> Any:
        order.append("driver pass")
        return await passes(loop)

    scheduler._run_pass_async = counted_pass  # type: ignore[method-assign]
    scheduler.start()
    await asyncio.sleep(0.01)
    order.clear()
    scheduler.add_task(job, "date", run_at=datetime.now(UTC) + timedelta(seconds=0.1))
    # (the add wakes the driver once, to plan its sleep: that pass finds nothing due)
    for _ in range(100):
        if "run" in order:
            break
        await asyncio.sleep(0.01)
    await scheduler.shutdown_async()
    assert "run" in order
    woken = order.index("run")
    assert order[:woken] == ["driver pass"]  # the add's pass only, before the timer
    assert order[woken + 1] == "driver pass"  # the timer's wake-up came after the run


async def test_a_failing_timer_pass_still_wakes_the_driver(caplog: Any) -> None:
    ran: list[str] = []

    async def job() -> None:
        ran.append("run")

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start()
    await asyncio.sleep(0.01)
    calls = {"n": 0}
    process = scheduler._processor.process_store

    def fails_once(alias: str, now: datetime) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the timer's pass (the first is the add's wake-up)
            raise RuntimeError("a bug in the pass")
        return process(alias, now)

    scheduler._processor.process_store = fails_once  # type: ignore[method-assign]
    scheduler.add_task(job, "date", run_at=datetime.now(UTC) + timedelta(seconds=0.05))
    for _ in range(100):
        if ran:
            break
        await asyncio.sleep(0.01)
    await scheduler.shutdown_async()
    assert ran == ["run"]  # the driver's own pass ran it after the timer's failed
    assert "scheduler pass failed" in caplog.text
