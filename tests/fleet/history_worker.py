"""One named scheduler process of a run-history fleet test.

``fleet_worker.py`` with an ``identity``: the run records a member writes carry its
identity, and a test that SIGKILLs a member must know which identity the survivors
name in ``"abandoned by <identity>"``. fleet_worker's scheduler takes the default
identity (host, pid, random), so this worker builds its own scheduler and reuses the
rest: the store, the event lines (same file format, so ``fleet_support.read_records``
reads them) and the log format.

Usage: ``python history_worker.py OUT_FILE STORE_KIND LOCATION IDENTITY [--lease S]``
(STORE_KIND ``sql`` or ``redis``, LOCATION as for fleet_worker). Prints
``ready <pid> <identity>`` once started; shuts down cleanly on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from typing import TextIO

from fleet_worker import CODES, make_store, recorder

from tickwork.schedulers import AsyncIOScheduler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("kind", choices=["sql", "redis"])
    parser.add_argument("location")
    parser.add_argument("identity")
    parser.add_argument("--lease", type=float, default=10.0)
    args = parser.parse_args()
    # Same log lines as fleet_worker ("<epoch seconds> <level> <logger>: <message>"):
    # Fleet.log_times reads them.
    logging.basicConfig(
        level=logging.INFO, format="%(created).3f %(levelname)s %(name)s: %(message)s"
    )
    with open(args.out, "a", buffering=1) as out:
        asyncio.run(run(args, out))


async def run(args: argparse.Namespace, out: TextIO) -> None:
    scheduler = AsyncIOScheduler(
        stores={"default": make_store(args.kind, args.location, args.lease)},
        identity=args.identity,
        timezone="UTC",
    )
    scheduler.add_listener(recorder(out), sum(CODES))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    scheduler.start()
    print("ready", os.getpid(), args.identity, flush=True)
    await stop.wait()
    await scheduler.shutdown_async()


if __name__ == "__main__":
    main()
