"""Lifecycle tasks: the async variant, with an async generator and make_async_function."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from tickwork import AsyncIOScheduler, make_async_function

log: list[str] = []


async def stream_metrics(url: str) -> AsyncGenerator[None, bool]:
    log.append(f"open {url}")
    sent = 0
    while (yield):
        sent += 1
        log.append("send")
    log.append(f"close after {sent} sends")


async def main() -> None:
    lifecycle = stream_metrics("wss://metrics.example.com")
    await anext(lifecycle)  # run the setup now
    step = make_async_function(lifecycle.asend)

    scheduler = AsyncIOScheduler()
    scheduler.add_task(step, "interval", seconds=0.1, args=[True], id="send")
    scheduler.add_task(step, "shutdown", args=[False], id="close")
    async with scheduler:
        await asyncio.sleep(0.35)


asyncio.run(main())
sends = log.count("send")
assert log[0] == "open wss://metrics.example.com"
assert log[-1] == f"close after {sends} sends"
assert sends >= 2
