"""AsyncIOScheduler starts what is due from its timer's own callback, one loop iteration
before its driver could, after a warm-up pass shortly before (docs/performance.md,
precision)."""

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
    scheduler.warm_up_lead = 0  # (the warm-up has tests of its own below)
    trace(scheduler, order)
    scheduler.start()
    await asyncio.sleep(0.01)
    order.clear()
    scheduler.add_task(job, "date", run_at=datetime.now(UTC) + timedelta(seconds=0.1))
    # (the add wakes the driver once, to plan its sleep: that pass finds nothing due)
    await wait_for(lambda: "run" in order)
    await asyncio.sleep(0.05)
    seen = list(order)
    await scheduler.shutdown_async()
    # The add's pass only, before the timer; and none after it: the timer's batch was
    # the whole pass (one in-process store), so it planned the next sleep itself.
    assert seen == ["driver pass", "run"]


async def test_the_timer_plans_the_next_wake_up_itself() -> None:
    order: list[str] = []
    runs: list[datetime] = []

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.warm_up_lead = 0
    trace(scheduler, order)
    scheduler.start()
    await asyncio.sleep(0.01)
    order.clear()
    scheduler.add_task(lambda: runs.append(datetime.now(UTC)), "interval", seconds=0.03)
    await wait_for(lambda: len(runs) >= 4)
    seen = list(order)
    await scheduler.shutdown_async()
    assert len(runs) >= 4
    assert seen == ["driver pass"]  # the add's: every later wake-up was the timer's alone


async def test_a_full_batch_in_the_timer_wakes_the_driver_for_the_rest() -> None:
    order: list[str] = []
    ran: list[int] = []

    scheduler = AsyncIOScheduler(timezone=UTC, batch_size=3)
    scheduler.warm_up_lead = 0
    trace(scheduler, order)
    scheduler.start()
    await asyncio.sleep(0.01)
    due = datetime.now(UTC) + timedelta(seconds=0.1)
    for index in range(5):
        scheduler.add_task(ran.append, "date", run_at=due, args=[index])
    await asyncio.sleep(0.01)
    order.clear()
    await wait_for(lambda: len(ran) == 5)
    await scheduler.shutdown_async()
    assert sorted(ran) == [0, 1, 2, 3, 4]
    # The timer's batch held 3 (a full batch: more may be due): the driver ran the rest.
    assert order[:1] == ["driver pass"]


async def test_a_failing_timer_pass_still_wakes_the_driver(caplog: Any) -> None:
    ran: list[str] = []

    async def job() -> None:
        ran.append("run")

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.warm_up_lead = 0
    scheduler.start()
    await asyncio.sleep(0.01)
    calls = {"n": 0}
    process = scheduler._pass.batch

    def fails_once(gate: Any, now: datetime) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the timer's pass (the first is the add's wake-up)
            raise RuntimeError("a bug in the pass")
        return process(gate, now)

    scheduler._pass.batch = fails_once  # type: ignore[method-assign]
    scheduler.add_task(job, "date", run_at=datetime.now(UTC) + timedelta(seconds=0.05))
    for _ in range(100):
        if ran:
            break
        await asyncio.sleep(0.01)
    await scheduler.shutdown_async()
    assert ran == ["run"]  # the driver's own pass ran it after the timer's failed
    assert "scheduler pass failed" in caplog.text


class ShiftedClock:
    """The wall clock, moved forward by ``shift`` seconds when told (a clock jump)."""

    def __init__(self) -> None:
        self.shift = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.shift)


def trace(scheduler: AsyncIOScheduler, order: list[str]) -> None:
    """Record driver passes and warm-up passes in ``order``."""
    passes, warm_up = scheduler._run_pass_async, scheduler._on_warm_up

    async def driver_pass(loop: asyncio.AbstractEventLoop) -> Any:
        order.append("driver pass")
        return await passes(loop)

    def traced_warm_up(future: asyncio.Future[None]) -> None:
        order.append("warm-up")
        warm_up(future)

    scheduler._run_pass_async = driver_pass  # type: ignore[method-assign]
    scheduler._on_warm_up = traced_warm_up  # type: ignore[method-assign]


async def wait_for(condition: Any, seconds: float = 2.0) -> None:
    for _ in range(int(seconds / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)


async def test_a_warm_up_pass_runs_shortly_before_the_wake_up_and_runs_nothing_early() -> None:
    order: list[str] = []
    started: list[datetime] = []

    async def job() -> None:
        started.append(datetime.now(UTC))
        order.append("run")

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.warm_up_lead = 0.02  # wide enough to tell apart on a busy machine
    trace(scheduler, order)
    scheduler.start()
    await asyncio.sleep(0.01)
    order.clear()
    due = datetime.now(UTC) + timedelta(seconds=0.15)
    scheduler.add_task(job, "date", run_at=due)
    await wait_for(lambda: "run" in order)
    await asyncio.sleep(0.05)
    seen = list(order)
    await scheduler.shutdown_async()
    # The add's pass plans the sleep; the warm-up finds nothing due and leaves the plan
    # (no driver pass after it); the timer starts the run and plans the next sleep.
    assert seen == ["driver pass", "warm-up", "run"]
    assert started[0] >= due


async def test_the_warm_up_keeps_the_planned_wake_up() -> None:
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.warm_up_lead = 0.05
    order: list[str] = []
    trace(scheduler, order)
    scheduler.start()
    await asyncio.sleep(0.01)
    due = datetime.now(UTC) + timedelta(seconds=0.2)
    scheduler.add_task(lambda: None, "date", run_at=due)
    await wait_for(lambda: "warm-up" in order)
    assert scheduler._planned_wakeup == due.timestamp()
    order.clear()
    # Later than the plan: the driver is not woken for it.
    scheduler.add_task(lambda: None, "date", run_at=due + timedelta(seconds=10))
    await asyncio.sleep(0.01)
    assert order == []
    await scheduler.shutdown_async()


async def test_what_the_warm_up_finds_due_runs_and_the_driver_plans_again() -> None:
    ran: list[str] = []
    clock = ShiftedClock()
    scheduler = AsyncIOScheduler(timezone=UTC, clock=clock)
    scheduler.warm_up_lead = 0.3
    order: list[str] = []
    trace(scheduler, order)
    scheduler.start()
    await asyncio.sleep(0.01)
    scheduler.add_task(
        lambda: ran.append("a"),
        "date",
        run_at=clock.now() + timedelta(seconds=1),
        mistrigger_grace_time=None,
    )
    await asyncio.sleep(0.01)
    order.clear()
    clock.shift = 5.0  # the wall clock jumps past the task; the loop's timers do not
    await wait_for(lambda: bool(ran))
    await scheduler.shutdown_async()
    assert ran == ["a"]
    assert order[:2] == ["warm-up", "driver pass"]


async def test_a_failing_warm_up_is_logged_and_the_run_still_happens(caplog: Any) -> None:
    ran: list[datetime] = []

    async def job() -> None:
        ran.append(datetime.now(UTC))

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.warm_up_lead = 0.02
    scheduler.start()
    await asyncio.sleep(0.01)
    process = scheduler._pass.batch
    failed: list[bool] = []

    def fails_in_warm_up(gate: Any, now: datetime) -> Any:
        if not failed and timedelta(0) < due - now < timedelta(seconds=0.05):  # the warm-up
            failed.append(True)
            raise RuntimeError("a bug in the pass")
        return process(gate, now)

    scheduler._pass.batch = fails_in_warm_up  # type: ignore[method-assign]
    due = datetime.now(UTC) + timedelta(seconds=0.15)
    scheduler.add_task(job, "date", run_at=due)
    await wait_for(lambda: bool(ran))
    await scheduler.shutdown_async()
    assert failed
    assert "scheduler pass failed" in caplog.text
    assert len(ran) == 1
    assert ran[0] >= due


async def test_short_sleeps_get_no_warm_up() -> None:
    order: list[str] = []
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.warm_up_lead = 0.05  # more than half of every sleep below
    trace(scheduler, order)
    scheduler.start()
    await asyncio.sleep(0.01)
    runs: list[int] = []
    scheduler.add_task(lambda: runs.append(1), "interval", seconds=0.08)
    await wait_for(lambda: len(runs) >= 3)
    await scheduler.shutdown_async()
    assert len(runs) >= 3
    assert "warm-up" not in order
