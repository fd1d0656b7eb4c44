"""Sending runs to arq: the schedulers only enqueue, arq workers (Redis) run them.

Needs Redis (127.0.0.1:6379). In production the parts below are separate modules and the
worker is its own process (`arq proj.worker.WorkerSettings`); here the worker runs embedded
in this process, on the same event loop.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker

from tickwork import AsyncIOScheduler
from tickwork.events import TASK_EXECUTED
from tickwork.executors.arq import ArqExecutor
from tickwork.executors.arq_worker import current_run_key, tickwork_function
from tickwork.stores.sqlalchemy import SQLAlchemyStore

REDIS = "redis://127.0.0.1:6379/6"  # a database of its own: arq's queue, jobs and results
QUEUE = "tickwork-docs-arq-proj"


# --- proj/jobs.py: plain functions, called by "module:function" reference -----------------
def rebuild_index(shard: int) -> str:
    """Runs in a worker thread; its run's key is the arq job id (an idempotency key)."""
    return f"shard {shard} rebuilt by run {current_run_key()}"


async def send_digest(team: str) -> str:
    """An async def function runs on the worker's event loop."""
    return f"digest for {team}"


# --- proj/worker.py: `arq proj.worker.WorkerSettings` ---------------------------------------
class WorkerSettings:
    functions = [tickwork_function()]  # "tickwork.run"; keeps each result a day
    redis_settings = RedisSettings.from_dsn(REDIS)
    queue_name = QUEUE


# --- proj/web.py: the schedulers (one per web worker, one shared store) ---------------------
database = Path(tempfile.mkdtemp()) / "tasks.sqlite"  # PostgreSQL in production
scheduler = AsyncIOScheduler(
    stores={"default": SQLAlchemyStore(f"sqlite:///{database}")},
    executors={"default": ArqExecutor(REDIS, queue_name=QUEUE)},
)
scheduler.add_task(send_digest, "interval", hours=24, args=["ops"], id="digest")
scheduler.add_task(rebuild_index, "cron", minute=0, args=[3], id="reindex-3")

if __name__ == "__main__":
    results: dict[str, Any] = {}
    both = asyncio.Event()

    def collect(event: Any) -> None:
        results[event.task_id] = event.return_value
        if len(results) == 2:
            both.set()

    scheduler.add_listener(collect, TASK_EXECUTED)

    async def main() -> None:
        worker = Worker(
            functions=WorkerSettings.functions,
            redis_settings=WorkerSettings.redis_settings,
            queue_name=QUEUE,
            handle_signals=False,
            poll_delay=0.1,
        )
        running = asyncio.create_task(worker.async_run())
        scheduler.start()
        scheduler.run_task("digest")  # run both now rather than wait for their slots
        scheduler.run_task("reindex-3")
        await asyncio.wait_for(both.wait(), 20)
        await scheduler.shutdown_async()
        running.cancel()
        await worker.close()

    asyncio.run(main())
    assert results["digest"] == "digest for ops"
    assert results["reindex-3"].startswith("shard 3 rebuilt by run reindex-3@")
    print(results)
