"""One scheduler of the Celery fleet test: an AsyncIOScheduler on a shared SQL store whose
runs go to Celery. Prints ``ready`` once started; SIGTERM stops it cleanly.

Usage: ``python celery_fleet_scheduler.py SQL_URL BROKER BACKEND QUEUE LEASE``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from tickwork.schedulers import AsyncIOScheduler
from tickwork.stores.sqlalchemy import SQLAlchemyStore


async def main() -> None:
    url, broker, backend, queue, lease = sys.argv[1:6]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    scheduler = AsyncIOScheduler(
        stores={"default": SQLAlchemyStore(url, lease_time=float(lease))},
        executors={
            "default": {
                "type": "celery",
                "app": broker,
                "backend": backend,
                "queue": queue,
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
