"""The ASGI app of the gunicorn reload tests (``test_gunicorn_reload.py``).

Every gunicorn worker imports it, so every worker has a scheduler with the same task,
``tick``: every second on whole seconds (an interval from :data:`fleet_tasks.EPOCH`),
each run lasting 0.3 s, so a reload finds one in progress. Each worker writes every
event about a run of it to ``worker-<pid>.log`` in ``RELOAD_OUT_DIR``, one line each, in
``fleet_worker.py``'s format (``EXE`` finished, ``MIS`` reported missed ...), for
:func:`fleet_support.judge`.

``RELOAD_DATABASE_URL`` set: all workers share an ``SQLAlchemyStore`` on it (leases).
Unset: each worker keeps the task in a memory store, and only the holder of
``RELOAD_OUT_DIR/tickwork-{store}.lock`` runs it.

Scheduler log lines go to stderr (gunicorn's log) as ``<epoch s> <pid> <level>
<logger>: <message>``: the timeline of a reload.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from fleet_tasks import EPOCH
from fleet_worker import CODES, recorder

from tickwork import AsyncIOScheduler
from tickwork.stores import BaseStore, MemoryStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore

OUT_DIR = Path(os.environ["RELOAD_OUT_DIR"])
DATABASE_URL = os.environ.get("RELOAD_DATABASE_URL")

logging.basicConfig(
    level=logging.INFO,
    format="%(created).3f %(process)d %(levelname)s %(name)s: %(message)s",
)

store: BaseStore
lock_path: str | None
if DATABASE_URL:
    store = SQLAlchemyStore(DATABASE_URL)
    lock_path = None
else:
    store = MemoryStore()
    lock_path = str(OUT_DIR / "tickwork-{store}.lock")

scheduler = AsyncIOScheduler(stores={"default": store}, lock_path=lock_path, timezone="UTC")
# Added as docs/many-workers.md says: a fixed id and replace_existing=True.
scheduler.add_task(
    "fleet_tasks:slow",
    "interval",
    seconds=1,
    start_at=EPOCH,
    args=[0.3],
    id="tick",
    replace_existing=True,
    # Every slot accounted for on its own: run, or reported missed (coalescing would
    # fold late slots into one run, leaving no trace of the others).
    coalesce=False,
    # A slot run late (up to the 1 s grace time) may still be running when the next
    # one falls due: both run, rather than the next being skipped for max_instances.
    max_instances=2,
)
_out = (OUT_DIR / f"worker-{os.getpid()}.log").open("a", buffering=1)
scheduler.add_listener(recorder(_out), sum(CODES))

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI app: every request gets "ok"."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


app = scheduler.asgi(hello)
