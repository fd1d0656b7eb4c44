"""Run-now requests that wait their turn: a task allowed one run at a time, asked for by
several callers at once; the urgent request goes first (aio-fluid's queue with
priority, written for tickwork)."""

from __future__ import annotations

import asyncio

from tickwork import AsyncIOScheduler

served: list[str] = []


async def rebuild_index(reason: str) -> str:
    served.append(reason)
    await asyncio.sleep(0.05)  # one rebuild at a time: max_instances=1
    return f"rebuilt for {reason}"


async def main() -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.start()
    scheduler.add_task(
        rebuild_index, "interval", hours=1, args=["schedule"], id="rebuild", max_instances=1
    )

    # While one rebuild runs, the others wait: higher priority first, FIFO within a level.
    ask = scheduler.run_task_now_queued
    nightly = asyncio.create_task(ask("rebuild", args=["nightly"]))
    await asyncio.sleep(0.01)
    report = asyncio.create_task(ask("rebuild", args=["report"]))
    urgent = asyncio.create_task(ask("rebuild", priority=10, args=["hotfix"]))
    results = await asyncio.gather(nightly, report, urgent)
    await scheduler.shutdown_async()

    print(served, results)
    assert served == ["nightly", "hotfix", "report"]
    assert results[2] == "rebuilt for hotfix"


asyncio.run(main())
