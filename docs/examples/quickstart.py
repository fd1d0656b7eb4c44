"""Quick start: an AsyncIOScheduler with an interval task and a cron task."""

from __future__ import annotations

import asyncio

from tickwork import AsyncIOScheduler

runs: list[str] = []


async def refresh_cache() -> None:
    runs.append("refresh")


def send_report() -> None:
    runs.append("report")


async def main() -> None:
    scheduler = AsyncIOScheduler()
    scheduler.add_task(refresh_cache, "interval", seconds=0.5)
    scheduler.add_task(
        send_report, "cron", second="*"
    )  # every second; hour=9, minute=0: daily at 09:00
    async with scheduler:  # starts on the running loop; shuts down on leaving
        await asyncio.sleep(1.25)


asyncio.run(main())
assert runs.count("refresh") == 2
assert runs.count("report") >= 1
