"""Quick start without asyncio: a BackgroundScheduler runs in a thread of its own."""

from __future__ import annotations

import time

from tickwork import BackgroundScheduler

beats: list[float] = []


def heartbeat() -> None:
    beats.append(time.monotonic())


scheduler = BackgroundScheduler()
scheduler.add_task(heartbeat, "interval", seconds=0.2)
with scheduler:  # start() now, shutdown() on leaving
    time.sleep(0.55)  # the main thread is free to do its own work
assert len(beats) >= 2
