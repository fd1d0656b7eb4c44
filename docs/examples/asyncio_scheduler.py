"""Schedulers: AsyncIOScheduler on your running loop, or on a loop of its own."""

from __future__ import annotations

import asyncio
import threading
import time

from tickwork import AsyncIOScheduler

loops: list[str] = []


async def where_am_i() -> None:
    loops.append(threading.current_thread().name)


# Inside a running loop, start() attaches the scheduler to that loop; `async with`
# starts it and, on leaving, awaits a full shutdown.
async def main() -> None:
    scheduler = AsyncIOScheduler()
    scheduler.add_task(where_am_i)  # no trigger: run once, now
    async with scheduler:
        await asyncio.sleep(0.1)
    assert loops == ["MainThread"]


asyncio.run(main())

# From sync code (no running loop), start() runs a loop of its own in a daemon thread.
# Coroutine tasks run there; plain functions run in the executor's thread pool.
scheduler = AsyncIOScheduler()
scheduler.add_task(where_am_i)
with scheduler:  # start() ... shutdown(): waits until the scheduler has stopped
    time.sleep(0.1)
assert loops[-1] == "tickwork-loop"
assert not scheduler.running
