"""A ten-second tour of tickwork: one AsyncIOScheduler, tasks on every kind of trigger.

Run it with ``make demo`` (or ``python examples/demo.py [--seconds N]``). Every line is
stamped with the seconds since start, so you can see what runs when:

* ``tick``       a plain function every 1 s (runs in the executor's thread pool);
* ``fetch``      an ``async def`` every 2.5 s (runs on the event loop);
* ``reminder``   once, 3 s after start (a date trigger);
* ``on-the-5s``  every wall-clock second divisible by 5 (a cron trigger, if available);
* ``flaky``      raises every 4 s: the error is logged, reported to the listener as
  TASK_ERROR, and the scheduler carries on;
* ``persisted``  every 2 s from a SQLite store (if the SQLAlchemy store is available);
* ``goodbye``    runs once, when the scheduler shuts down (a shutdown trigger).

While it runs, its admin dashboard is served at the address it prints (with the web
extra, which ``make`` installs): the tasks, their runs and tracebacks, pause / resume /
run now. ``make demo ARGS=--serve`` keeps it running until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from tickwork import AsyncIOScheduler, events
from tickwork.events import ALL_EVENTS, TASK_ERROR, TASK_EXECUTED, TASK_SUBMITTED

STARTED = time.monotonic()
runs: Counter[str] = Counter()
errors: Counter[str] = Counter()
skipped: set[str] = set()
_print_lock = threading.Lock()  # sync tasks print from the executor's threads

#: Event code -> constant name, for printing.
EVENT_NAMES = {
    getattr(events, name): name
    for name in events.__all__
    if name.isupper() and name != "ALL_EVENTS"
}


def say(message: str) -> None:
    """Print ``message`` stamped with the seconds since the demo started."""
    with _print_lock:
        print(f"[{time.monotonic() - STARTED:6.2f}s] {message}", flush=True)


# -- the tasks ---------------------------------------------------------------------------


def tick() -> None:
    runs["tick"] += 1
    say(f"tick #{runs['tick']} (sync, every 1 s)")


async def fetch() -> str:
    await asyncio.sleep(0.1)  # pretend to wait for the network, without blocking the loop
    runs["fetch"] += 1
    say(f"fetch #{runs['fetch']} done (async, every 2.5 s)")
    return "200 OK"


def reminder(text: str) -> None:
    runs["reminder"] += 1
    say(f"reminder: {text} (date trigger, once)")


def on_the_fives() -> None:
    runs["on-the-5s"] += 1
    say(f"on-the-5s at wall-clock second {datetime.now().second:02d} (cron second='*/5')")


def flaky() -> None:
    runs["flaky"] += 1
    say("flaky is about to raise")
    raise RuntimeError("flaky failed on purpose")


def persisted() -> None:
    runs["persisted"] += 1
    say(f"persisted #{runs['persisted']} (from the SQLite store)")


def goodbye() -> None:
    runs["goodbye"] += 1
    say("goodbye: the shutdown-trigger task runs during shutdown")


def listener(event: Any) -> None:
    """Print every event it is subscribed to (see the mask in main())."""
    name = EVENT_NAMES.get(event.code, str(event.code))
    if event.code == TASK_ERROR:
        errors[event.task_id] += 1
        say(f"event {name}: task {event.task_id!r} raised {event.exception!r}")
    elif hasattr(event, "task_id"):
        say(f"event {name}: task {event.task_id!r}")
    elif getattr(event, "alias", None):
        say(f"event {name}: {event.alias!r}")
    else:
        say(f"event {name}")


# -- the program ---------------------------------------------------------------------------


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a missing parent package, or a blocked module
        return False


def free_port(preferred: int) -> int:
    """``preferred`` when nothing listens there on 127.0.0.1, else a free port."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError("no free port on 127.0.0.1")


async def serve_dashboard(
    scheduler: AsyncIOScheduler, port: int
) -> Callable[[], Awaitable[None]] | None:
    """Serve the scheduler's admin dashboard on 127.0.0.1; returns a coroutine function
    that stops it (None without the web extra)."""
    if not (has_module("starlette") and has_module("jinja2") and has_module("uvicorn")):
        say("note: the web extra is not installed; no dashboard (pip install 'tickwork[web]')")
        return None
    import uvicorn

    token = os.environ.get("TICKWORK_ADMIN_TOKEN") or secrets.token_urlsafe(12)
    app = scheduler.admin_app(token=token, title="tickwork demo", refresh_seconds=2)
    port = free_port(port)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    say(f"dashboard: http://127.0.0.1:{port}/  (token: {token})")

    async def stop() -> None:
        server.should_exit = True
        await serving

    return stop


async def main(seconds: float, port: int = 8000) -> None:
    scheduler = AsyncIOScheduler()
    # Every event but the two that come with each run (they would drown the output).
    scheduler.add_listener(listener, mask=ALL_EVENTS & ~(TASK_SUBMITTED | TASK_EXECUTED))

    scheduler.add_task(tick, "interval", seconds=1, id="tick")
    scheduler.add_task(fetch, "interval", seconds=2.5, id="fetch")
    scheduler.add_task(
        reminder,
        "date",
        run_at=datetime.now().astimezone() + timedelta(seconds=3),
        args=["three seconds have passed"],
        id="reminder",
    )
    if has_module("tickwork.triggers.cron"):
        scheduler.add_task(on_the_fives, "cron", second="*/5", id="on-the-5s")
    else:
        skipped.add("on-the-5s")
        say("note: tickwork.triggers.cron is not available yet; skipping the cron task")
    scheduler.add_task(flaky, "interval", seconds=4, id="flaky")
    scheduler.add_task(goodbye, "shutdown", id="goodbye")

    with tempfile.TemporaryDirectory(prefix="tickwork-demo-") as tmp:
        # Inside a running loop the scheduler attaches to it. Leaving the block shuts it
        # down: 'goodbye' runs and running tasks finish (nothing is cancelled).
        async with scheduler:
            say(f"scheduler started; running for {seconds:g} s")
            if has_module("tickwork.stores.sqlalchemy"):
                # Stores and tasks can be added to a running scheduler too.
                sqlite_path = os.path.join(tmp, "demo.sqlite")
                scheduler.add_store(
                    {"type": "sqlalchemy", "url": f"sqlite:///{sqlite_path}"}, "sqlite"
                )
                scheduler.add_task(persisted, "interval", seconds=2, id="persisted", store="sqlite")
                say(f"SQLite store in {sqlite_path}")
            else:
                skipped.add("persisted")
                say("note: tickwork.stores.sqlalchemy is not available; skipping the SQLite store")
            stop_dashboard = await serve_dashboard(scheduler, port)
            try:
                await asyncio.sleep(seconds)
            finally:
                if stop_dashboard is not None:
                    await stop_dashboard()
            say("shutting down")

    say(f"scheduler stopped cleanly: running={scheduler.running}")
    print("summary:", flush=True)
    for name in ("tick", "fetch", "reminder", "on-the-5s", "flaky", "persisted", "goodbye"):
        if name in skipped:
            print(f"  {name:<10} skipped")
        else:
            print(f"  {name:<10} ran {runs[name]} time(s), raised {errors[name]} time(s)")
    print(f"  tasks kept in the memory store: {len(scheduler.get_tasks('default'))}")
    # Every run is on record in its store (tickwork.runs): what ran, how long, how it ended.
    records = await scheduler.get_runs_async(store="default", limit=10_000)
    print(f"run history of the memory store: {len(records)} record(s); the failures:")
    for record in await scheduler.get_runs_async(store="default", outcome="error", limit=3):
        print(
            f"  {record.scheduled_run_time:%H:%M:%S} {record.task_id:<10} "
            f"{record.outcome} after {record.duration or 0:.4f} s: {record.error}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    parser.add_argument("--serve", action="store_true", help="run until Ctrl-C")
    parser.add_argument("--port", type=int, default=8000, help="the dashboard's port")
    options = parser.parse_args()
    # Task errors are logged by tickwork (logger "tickwork..."), with their traceback.
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.WARNING,
        format="    log %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(main(float("inf") if options.serve else options.seconds, options.port))
    except KeyboardInterrupt:
        print("stopped (Ctrl-C)")
