"""Lifecycle tasks: a generator is the whole life of a task.

Setup runs before the first ``yield``, each trigger fire sends ``True`` (one tick), and a
shutdown-trigger task sends ``False``, which ends the loop and runs the cleanup. The
generator keeps its state (a connection, a counter) in local variables between ticks.

``make_function(gen.send)`` / ``make_async_function(agen.asend)`` turn the bound
``send`` methods into plain callables a task can hold; when the generator finishes, the
``StopIteration`` / ``StopAsyncIteration`` is the normal end, not an error.

Mind the timing: tickwork starts shutdown-trigger tasks as soon as shutdown begins, so a
``send(False)`` that arrives while a tick is still running finds the generator busy
("generator already executing"). Keep ticks short, or shut down between ticks as here.

Run: ``python examples/lifecycle.py [--seconds N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import AsyncGenerator, Generator

from tickwork import AsyncIOScheduler, make_async_function, make_function

_print_lock = threading.Lock()  # sync ticks print from the executor's threads


def say(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


def sync_lifecycle(name: str) -> Generator[None, bool, str]:
    say(f"[{name}] setup: open the connection")
    ticks = 0
    while (yield):  # True: tick again; False: stop
        ticks += 1
        say(f"[{name}] tick {ticks}")
    say(f"[{name}] cleanup after {ticks} ticks: close the connection")
    return f"{name} done"


async def async_lifecycle(name: str) -> AsyncGenerator[None, bool]:
    say(f"[{name}] setup: open the connection")
    ticks = 0
    while (yield):
        ticks += 1
        await asyncio.sleep(0)  # stands for awaiting some I/O
        say(f"[{name}] tick {ticks}")
    say(f"[{name}] cleanup after {ticks} ticks: close the connection")


async def main(seconds: float) -> None:
    scheduler = AsyncIOScheduler()

    # The sync variant: prime the generator (runs the setup), then schedule its send().
    gen = sync_lifecycle("sync")
    next(gen)
    send = make_function(gen.send)
    scheduler.add_task(send, "interval", seconds=0.4, args=[True], id="sync-tick")
    scheduler.add_task(send, "shutdown", args=[False], id="sync-cleanup")

    # The async variant: the same with asend() on an async generator.
    agen = async_lifecycle("async")
    await anext(agen)
    asend = make_async_function(agen.asend)
    scheduler.add_task(asend, "interval", seconds=0.4, args=[True], id="async-tick")
    scheduler.add_task(asend, "shutdown", args=[False], id="async-cleanup")

    async with scheduler:  # start now, shut down (running both cleanups) on leaving
        await asyncio.sleep(seconds)
    say(f"scheduler stopped: running={scheduler.running}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="lifecycle tasks with tickwork")
    parser.add_argument("--seconds", type=float, default=1.5, help="how long to run")
    asyncio.run(main(parser.parse_args().seconds))
