"""Schedulers: NativeAsyncIOScheduler, controlled with await."""

from __future__ import annotations

import asyncio

from tickwork import NativeAsyncIOScheduler

ticks: list[int] = []


async def tick() -> None:
    ticks.append(len(ticks))


async def main() -> None:
    scheduler = NativeAsyncIOScheduler()
    scheduler.add_task(tick, "interval", seconds=0.1)
    await scheduler.start()  # always on the running loop
    await asyncio.sleep(0.35)
    await scheduler.shutdown()  # returns once stopped; running tasks finished
    assert not scheduler.running
    assert len(ticks) >= 2  # at 0.1 s, 0.2 s (and 0.3 s)

    async with NativeAsyncIOScheduler() as other:  # the same with `async with`
        assert other.running


asyncio.run(main())
