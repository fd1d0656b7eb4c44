"""Sending runs to Celery: the schedulers only enqueue, a Celery worker fleet runs them.

Needs RabbitMQ (127.0.0.1:5672, guest/guest) and Redis (127.0.0.1:6379). In production
the three parts below are three modules; here they share one file, and the worker runs
embedded in this process (a real Celery worker, in a thread).
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path
from typing import Any

from celery import Celery
from celery.contrib.testing.worker import start_worker
from starlette.applications import Starlette

from tickwork import AsyncIOScheduler
from tickwork.events import TASK_EXECUTED
from tickwork.executors.celery import CeleryExecutor
from tickwork.executors.celery_worker import current_run_key, register
from tickwork.stores.sqlalchemy import SQLAlchemyStore

# --- proj/celery.py: the Celery app, shared by the workers and the schedulers -------------
celery_app = Celery(
    "proj",
    broker="amqp://guest:guest@127.0.0.1:5672//",
    backend="redis://127.0.0.1:6379/5",  # a database of its own: markers and results
)
celery_app.conf.broker_transport_options = {"confirm_publish": True}  # sent = broker has it
celery_app.conf.task_default_queue = "tickwork-docs-proj"
register(celery_app)  # the worker task "tickwork.run", for plain functions


@celery_app.task(name="proj.send_digest")  # type: ignore[untyped-decorator]
def send_digest(team: str) -> str:
    """A Celery task: tickwork sends it by its name."""
    return f"digest for {team}"


def rebuild_index(shard: int) -> str:
    """A plain function: it goes to "tickwork.run" by its "module:function" reference,
    and may read its run's key (an idempotency key: the same on every delivery)."""
    return f"shard {shard} rebuilt by run {current_run_key()}"


# --- proj/web.py: the web app; its schedulers enqueue ---------------------------------------
# gunicorn proj.web:app -k uvicorn.workers.UvicornWorker -w 3
# Three workers, three schedulers on one shared store: each slot is enqueued once.
database = Path(tempfile.mkdtemp()) / "tasks.sqlite"  # PostgreSQL in production
scheduler = AsyncIOScheduler(
    stores={"default": SQLAlchemyStore(f"sqlite:///{database}")},
    executors={"default": CeleryExecutor(celery_app)},
)
# A Celery task is named by reference ("proj.celery:send_digest"): the store keeps that.
scheduler.add_task(
    f"{__name__}:send_digest",
    "interval",
    hours=24,
    args=["ops"],
    id="digest",
    replace_existing=True,
)
scheduler.add_task(rebuild_index, "cron", minute=0, args=[3], id="reindex-3", replace_existing=True)
app = scheduler.asgi(Starlette())

# --- proj/worker: `celery -A proj.celery:celery_app worker` -------------------------------
if __name__ == "__main__":
    results: dict[str, Any] = {}
    both = threading.Event()

    def collect(event: Any) -> None:
        results[event.task_id] = event.return_value
        if len(results) == 2:
            both.set()

    scheduler.add_listener(collect, TASK_EXECUTED)

    async def serve() -> None:
        """What gunicorn's worker does with the app's lifespan: start the scheduler, run,
        stop it."""
        scheduler.start()
        scheduler.run_task("digest")  # run both now rather than wait for their slots
        scheduler.run_task("reindex-3")
        assert await asyncio.to_thread(both.wait, 20), results
        await scheduler.shutdown_async()

    with start_worker(celery_app, perform_ping_check=False, shutdown_timeout=30):
        asyncio.run(serve())
    assert results["digest"] == "digest for ops"
    assert results["reindex-3"].startswith("shard 3 rebuilt by run reindex-3@")
    print(results)
