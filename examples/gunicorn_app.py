"""A web app served by several gunicorn workers, each with a scheduler; every run of
every task happens once.

Run it::

    gunicorn -w 4 -k uvicorn.workers.UvicornWorker --chdir examples gunicorn_app:app

Every worker imports this module, so every worker has a scheduler and adds the same
tasks (fixed ids, ``replace_existing=True``). Two ways to make one run of each slot:

* **One host** (the default here): each worker keeps the tasks in memory and
  ``lock_path`` makes the worker holding the lock file run them; the others stand by.
  ``{pgrp}`` (the gunicorn master's process group) keeps two deployments on one host
  apart. If the holder dies or is recycled, another worker takes the lock within about
  a second and carries on from where the holder got to.
* **Any number of hosts**: set ``TICKWORK_DATABASE_URL`` (PostgreSQL or MariaDB / MySQL,
  e.g. ``postgresql+psycopg://user@db/app``). All workers share the table; each due run
  is claimed by one of them (row leases), so no lock file is needed.

Each run appends ``<task id> <scheduled time> <pid>`` to ``TICKWORK_RUN_LOG`` (default:
``tickwork-runs.log`` in the temporary directory), and ``GET /runs`` shows the latest
ones. See docs/many-workers.md.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tickwork import AsyncIOScheduler
from tickwork.events import TASK_EXECUTED, TaskExecutionEvent
from tickwork.stores import BaseStore, MemoryStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore

RUN_LOG = os.environ.get("TICKWORK_RUN_LOG") or os.path.join(
    tempfile.gettempdir(), "tickwork-runs.log"
)
DATABASE_URL = os.environ.get("TICKWORK_DATABASE_URL")
LOCK_DIR = os.environ.get("TICKWORK_LOCK_DIR") or tempfile.gettempdir()

store: BaseStore
if DATABASE_URL:
    # Shared by every worker of every host: leases decide who runs what.
    store = SQLAlchemyStore(DATABASE_URL)
    lock_path = None
else:
    # One copy per worker; only the lock holder runs them.
    store = MemoryStore()
    lock_path = os.path.join(LOCK_DIR, "tickwork-gunicorn-{pgrp}-{store}.lock")

scheduler = AsyncIOScheduler(stores={"default": store}, lock_path=lock_path, timezone="UTC")


async def heartbeat() -> None:
    """Every second, on the second: the same slots in every worker."""


def report() -> None:
    """Every two seconds; a plain function runs in a thread, off the event loop."""


# Added after the functions are defined (not with the decorator form): a task in an SQL
# store names its function "gunicorn_app:heartbeat", which must already import.
scheduler.add_task(heartbeat, "cron", second="*", id="heartbeat", replace_existing=True)
scheduler.add_task(report, "cron", second="*/2", id="report", replace_existing=True)


def record_run(event: TaskExecutionEvent) -> None:
    """Append the finished run to the run log: one short line, so the workers' appends
    never interleave. (Listeners run where the run ended, here the event loop: keep them
    this quick.)"""
    with open(RUN_LOG, "a") as log:
        log.write(f"{event.task_id} {event.scheduled_run_time.timestamp()!r} {os.getpid()}\n")


scheduler.add_listener(record_run, TASK_EXECUTED)


def runs(request: Request) -> JSONResponse:
    """The last 20 runs, from every worker (a plain function: Starlette runs it in a
    thread, so reading the file does not block the event loop)."""
    try:
        with open(RUN_LOG) as log:
            lines = log.read().splitlines()[-20:]
    except FileNotFoundError:
        lines = []
    rows: list[dict[str, Any]] = []
    for line in lines:
        task_id, when, pid = line.split()
        rows.append({"task": task_id, "scheduled": float(when), "pid": int(pid)})
    return JSONResponse({"served_by": os.getpid(), "runs": rows})


app = scheduler.asgi(Starlette(routes=[Route("/runs", runs)]))
