"""One scheduler of the arq fleet test: an AsyncIOScheduler on a shared SQL store whose runs
go to arq. Prints ``ready`` once started; SIGTERM stops it cleanly.

Usage: ``python arq_fleet_scheduler.py SQL_URL REDIS_URL QUEUE LEASE``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from tickwork.schedulers import AsyncIOScheduler
from tickwork.stores.sqlalchemy import SQLAlchemyStore


async def main() -> None:
    url, redis_url, queue, lease = sys.argv[1:5]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    scheduler = AsyncIOScheduler(
        stores={"default": SQLAlchemyStore(url, lease_time=float(lease))},
        executors={
            "default": {
                "type": "arq",
                "redis": redis_url,
                "queue_name": queue,
                "poll_interval": 0.2,
            }
        },
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    scheduler.start()
    print("ready", flush=True)
    await stop.wait()
    await scheduler.shutdown_async()


if __name__ == "__main__":
    asyncio.run(main())
