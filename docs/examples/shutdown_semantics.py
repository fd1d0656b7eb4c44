"""Schedulers: what shutdown does, and what survives it."""

from __future__ import annotations

import asyncio

from tickwork import AsyncIOScheduler

log: list[str] = []


async def upload() -> None:
    log.append("upload started")
    await asyncio.sleep(0.3)
    log.append("upload finished")


def flush_buffers() -> None:
    log.append("shutdown task ran")


async def main() -> None:
    scheduler = AsyncIOScheduler()
    scheduler.add_task(upload, id="upload")  # runs now, takes 0.3 s
    scheduler.add_task(flush_buffers, "shutdown", id="flush")
    scheduler.add_task(print, "interval", hours=1, args=["hourly"], id="hourly")

    scheduler.start()
    await asyncio.sleep(0.1)  # the upload is running
    # On the loop, await the shutdown: the running upload finishes (shutdown never
    # cancels a running task), then the shutdown-trigger task runs.
    await scheduler.shutdown_async()
    assert log == ["upload started", "upload finished", "shutdown task ran"]
    assert not scheduler.running

    # The memory store keeps its tasks across a shutdown: start again and they are there.
    assert [task.id for task in scheduler.get_tasks()] == ["hourly", "flush"]
    scheduler.start()
    assert scheduler.get_task("hourly") is not None
    await scheduler.shutdown_async()
    assert log.count("shutdown task ran") == 2  # shutdown tasks run at every shutdown


asyncio.run(main())
