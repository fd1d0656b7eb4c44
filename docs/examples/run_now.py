"""Run a task now and wait for its result: a scheduled task that a web handler or a
command line also runs on demand, with other arguments, getting its return value or its
error (aio-fluid's ``execute``, written for tickwork)."""

from __future__ import annotations

import asyncio

from tickwork import AsyncIOScheduler


async def import_orders(source: str = "shop", limit: int = 100) -> int:
    await asyncio.sleep(0.01)  # the real import talks to the shop's API
    if source == "legacy":
        raise ValueError("the legacy shop is gone")
    return min(limit, 42)


async def main() -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.start()
    # Every 5 minutes with its own arguments ...
    scheduler.add_task(import_orders, "interval", minutes=5, id="import-orders")

    # ... and now, on demand: through its executor, with its events and run record.
    imported = await scheduler.run_task_now("import-orders")
    few = await scheduler.run_task_now("import-orders", "shop", limit=10)
    try:
        await scheduler.run_task_now("import-orders", source="legacy")
    except ValueError as exc:
        failure = str(exc)

    await asyncio.sleep(0.6)  # run records are written every half second
    runs = await scheduler.get_runs_async("import-orders")
    await scheduler.shutdown_async()

    print(imported, few, failure, [r.outcome for r in runs])
    assert (imported, few) == (42, 10)
    assert failure == "the legacy shop is gone"
    assert sorted(r.outcome for r in runs) == ["error", "success", "success"]


asyncio.run(main())
