"""One member of a leadership fleet test (``test_leadership_fleet.py``).

It runs an :class:`~tickwork.schedulers.AsyncIOScheduler` on a shared store with one
leader-only task (``fleet_tasks:tick`` every 0.2 s) and writes to its own file, one line
each::

    LEAD <wall>            is_leader turned true (polled every 2 ms)
    DROP <wall>            is_leader turned false
    TERM <generation> <leader 1/0> <wall>   a LEADERSHIP_CHANGED event
    RUN <slot> <wall>      a run of the leader-only task finished here

It prints ``ready`` once started and shuts down cleanly on SIGTERM (resigning).

Usage: ``python leader_worker.py OUT_FILE sql|redis LOCATION --lease SECONDS``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from fleet_tasks import EPOCH
from fleet_worker import make_store

from tickwork.events import LEADERSHIP_CHANGED, TASK_EXECUTED
from tickwork.schedulers import AsyncIOScheduler

#: How often the worker looks at ``is_leader``.
POLL = 0.002


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("kind", choices=["sql", "redis"])
    parser.add_argument("location")
    parser.add_argument("--lease", type=float, default=10.0)
    # Instead of the tick: one run of a leader-only ``fleet_tasks:flaky`` (attempts noted
    # in NOTES, each lasting 3 s) due at the epoch time AT, for abandon-and-take-over.
    parser.add_argument("--abandon", nargs=2, metavar=("NOTES", "AT"))
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(created).3f %(levelname)s %(name)s: %(message)s"
    )
    with open(args.out, "a", buffering=1) as out:
        asyncio.run(run(args, out))


class Journal:
    """The lines of the output file, written from several threads."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def write(self, *fields: object) -> None:
        with self._lock:
            self._out.write(" ".join(str(field) for field in fields) + "\n")
            self._out.flush()


def watch(scheduler: AsyncIOScheduler, journal: Journal, stop: threading.Event) -> None:
    """Write LEAD / DROP whenever ``is_leader`` changes."""
    leading = False
    while not stop.is_set():
        now = scheduler.is_leader
        if now != leading:
            journal.write("LEAD" if now else "DROP", repr(time.time()))
            leading = now
        time.sleep(POLL)
    if leading:
        journal.write("DROP", repr(time.time()))


async def run(args: argparse.Namespace, out: TextIO) -> None:
    journal = Journal(out)
    scheduler = AsyncIOScheduler(
        stores={"default": make_store(args.kind, args.location, args.lease)}, timezone="UTC"
    )

    def changed(event: Any) -> None:
        journal.write("TERM", event.generation, int(event.leader), repr(time.time()))

    def ran(event: Any) -> None:
        journal.write("RUN", repr(event.scheduled_run_time.timestamp()), repr(time.time()))

    scheduler.add_listener(changed, LEADERSHIP_CHANGED)
    scheduler.add_listener(ran, TASK_EXECUTED)
    if args.abandon is not None:
        notes, at = args.abandon
        scheduler.add_task(
            "fleet_tasks:flaky",
            "interval",
            hours=1,
            start_at=datetime.fromtimestamp(float(at), UTC),
            args=(notes, 0, 3.0),
            id="leader-abandon",
            leader_only=True,
            mistrigger_grace_time=None,
            replace_existing=True,
        )
    else:
        scheduler.add_task(
            "fleet_tasks:tick",
            "interval",
            seconds=0.2,
            start_at=EPOCH,
            id="leader-tick",
            leader_only=True,
            replace_existing=True,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    scheduler.start()
    done = threading.Event()
    watcher = threading.Thread(target=watch, args=(scheduler, journal, done), daemon=True)
    watcher.start()
    print("ready", os.getpid(), flush=True)
    await stop.wait()
    await scheduler.shutdown_async()
    done.set()
    watcher.join()


if __name__ == "__main__":
    main()
