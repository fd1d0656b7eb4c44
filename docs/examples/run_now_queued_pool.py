"""Run-now requests of several tasks sharing one busy worker: they wait for it by
priority, whichever task they are for (a thread pool of one thread here; the same holds
for a process pool and for the asyncio executor's threads)."""

from __future__ import annotations

import asyncio
import time

from tickwork import AsyncIOScheduler
from tickwork.executors import ThreadPoolExecutor

served: list[str] = []


def export(reason: str) -> str:
    served.append(reason)
    time.sleep(0.2)  # holds the only worker
    return reason


async def main() -> None:
    scheduler = AsyncIOScheduler(
        timezone="UTC", executors={"default": ThreadPoolExecutor(max_workers=1)}
    )
    scheduler.start()
    for task_id in ("invoices", "thumbnails"):
        scheduler.add_task(export, "interval", hours=1, args=["schedule"], id=task_id)

    # One worker for both tasks: while it is busy, requests wait for it by priority.
    ask = scheduler.run_task_now_queued
    monthly = asyncio.create_task(ask("invoices", args=["monthly invoices"]))
    while not served:  # until it holds the worker
        await asyncio.sleep(0.001)
    thumbnails = asyncio.create_task(ask("thumbnails", args=["new thumbnails"]))
    support = asyncio.create_task(ask("invoices", priority=5, args=["invoice for support"]))
    await asyncio.gather(monthly, thumbnails, support)
    await scheduler.shutdown_async()

    print(served)
    assert served == ["monthly invoices", "invoice for support", "new thumbnails"]


asyncio.run(main())
