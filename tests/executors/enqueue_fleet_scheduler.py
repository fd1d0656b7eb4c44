"""One scheduler of the Celery and arq fleet tests: an AsyncIOScheduler on a shared SQL
store whose runs go to the executor given as JSON (its config dict). Prints ``ready``
once started; SIGTERM stops it cleanly.

Usage: ``python enqueue_fleet_scheduler.py SQL_URL LEASE EXECUTOR_JSON``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys

from tickwork.schedulers import AsyncIOScheduler
from tickwork.stores.sqlalchemy import SQLAlchemyStore


async def main() -> None:
    url, lease, executor = sys.argv[1:4]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    scheduler = AsyncIOScheduler(
        stores={"default": SQLAlchemyStore(url, lease_time=float(lease))},
        executors={"default": json.loads(executor)},
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    scheduler.start()
    print("ready", flush=True)
    await stop.wait()
    await scheduler.shutdown_async()


if __name__ == "__main__":
    asyncio.run(main())
