"""One scheduler process of a fleet test.

It runs an :class:`~tickwork.schedulers.AsyncIOScheduler` on one store and writes every
event about a run to its own file, one line each::

    <code> <task id> <scheduled time, epoch s> <pid> <wall time, epoch s>

with code ``SUB`` (handed to the executor), ``EXE`` (finished), ``ERR``, ``MIS``
(missed) or ``MAX`` (skipped for max_instances). It prints ``ready`` once started and
shuts down cleanly on SIGTERM.

Usage: ``python fleet_worker.py OUT_FILE STORE_KIND LOCATION [options]`` where
STORE_KIND is ``sql`` (LOCATION an SQLAlchemy URL), ``redis`` (LOCATION ``url#prefix``)
or ``memory`` (each process its own; needs ``--lock-path``, and ``--tasks`` adds them).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import time
from typing import Any, TextIO

from fleet_tasks import EPOCH

from tickwork.events import (
    TASK_ERROR,
    TASK_EXECUTED,
    TASK_MAX_INSTANCES,
    TASK_MISSED,
    TASK_SUBMITTED,
)
from tickwork.schedulers import AsyncIOScheduler
from tickwork.stores import BaseStore, MemoryStore
from tickwork.stores.redis import RedisStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore

CODES = {
    TASK_SUBMITTED: "SUB",
    TASK_EXECUTED: "EXE",
    TASK_ERROR: "ERR",
    TASK_MISSED: "MIS",
    TASK_MAX_INSTANCES: "MAX",
}


def make_store(kind: str, location: str, lease_time: float) -> BaseStore:
    if kind == "sql":
        return SQLAlchemyStore(location, lease_time=lease_time)
    if kind == "redis":
        url, _, prefix = location.partition("#")
        return RedisStore(url, prefix=prefix, lease_time=lease_time)
    return MemoryStore()


def recorder(out: TextIO) -> Any:
    pid = os.getpid()

    def record(event: Any) -> None:
        times = getattr(event, "scheduled_run_times", None) or (event.scheduled_run_time,)
        for when in times:
            out.write(
                f"{CODES[event.code]} {event.task_id} {when.timestamp()!r} {pid} {time.time()!r}\n"
            )
        out.flush()

    return record


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("kind", choices=["sql", "redis", "memory"])
    parser.add_argument("location")
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument("--lock-path")
    parser.add_argument("--tasks", type=int, default=0, help="add this many tick tasks")
    parser.add_argument("--batch-size", type=int, default=10)
    args = parser.parse_args()
    # Scheduler logs (lock take-overs, abandoned runs, store outages) go to stderr, which
    # the test keeps in a file: "<epoch seconds> <level> <logger>: <message>".
    logging.basicConfig(
        level=logging.INFO, format="%(created).3f %(levelname)s %(name)s: %(message)s"
    )
    with open(args.out, "a", buffering=1) as out:
        asyncio.run(run(args, out))


async def run(args: argparse.Namespace, out: TextIO) -> None:
    scheduler = AsyncIOScheduler(
        stores={"default": make_store(args.kind, args.location, args.lease)},
        lock_path=args.lock_path,
        batch_size=args.batch_size,
        timezone="UTC",
    )
    scheduler.add_listener(recorder(out), sum(CODES))
    for index in range(args.tasks):
        scheduler.add_task(
            "fleet_tasks:tick",
            "interval",
            seconds=1,
            start_at=EPOCH,
            id=f"tick-{index:02d}",
            replace_existing=True,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    scheduler.start()
    print("ready", os.getpid(), flush=True)
    await stop.wait()
    await scheduler.shutdown_async()


if __name__ == "__main__":
    main()
