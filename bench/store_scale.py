"""A scheduler on a big store: start-up time, time to find the next due batch and memory,
with 10,000, 100,000 and 1,000,000 tasks stored.

    python bench/store_scale.py               # SQLite and PostgreSQL, 10k / 100k / 1M
    python bench/store_scale.py --quick       # 10k and 100k
    python bench/store_scale.py --stores sqlite --sizes 10000,1000000

One table per store grows from size to size: the tasks are seeded through the store's own
``add_tasks`` (its serializer, its bulk insert) in chunks of 20,000, interval tasks (1 h)
whose next run times are spread over the coming hour, so none is due; 256 more are due
from the start. At each size a fresh process (so nothing is cached from the seeding)
measures, on the store:

* start: ``AsyncIOScheduler(stores=...)`` built and ``start(paused=True)`` returned (it
  starts the stores in the call)
  (paused: the figures below are the store's, not a pass's);
* next run time: one ``get_next_run_time()``, and a second one (the first may pay for
  cold caches and, on PostgreSQL, for a plan made without statistics of rows added
  since the last ANALYZE);
* next batch: one ``acquire_due_tasks(now, 256, ...)``, which must return the 256 due
  tasks, and one ``get_due_tasks(now, 256)``;
* RSS: the process's growth from before the scheduler was built (the modules already
  imported) until after these calls.

All of them should stay flat as the number of stored tasks grows: indexed queries, no
full loads. On PostgreSQL the table is ANALYZEd after each seeding step (what autovacuum
does soon after a bulk load; ``--no-analyze`` measures right after the load instead: one
run here took 610 ms for the claim at 1M tasks that way, 45 ms after ANALYZE, while the
claim's SELECT itself was a 1 ms index scan either way). PostgreSQL works in a database of its own (``tickwork_bench_<random>``,
dropped afterwards); SQLite in a temporary file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
TABLE = "scale_tasks"
CHUNK = 20_000
DUE = 256
PAGE = os.sysconf("SC_PAGE_SIZE")


def noop() -> None:
    """The stored tasks' function (by reference: ``store_scale:noop``)."""


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def make_store(url: str) -> Any:
    from tickwork.stores.sqlalchemy import SQLAlchemyStore

    return SQLAlchemyStore(url, tablename=TABLE)


def seed(url: str, start: int, stop: int, now: datetime, due: bool = False) -> float:
    """Add tasks ``start`` .. ``stop - 1``; the seconds spent in ``add_tasks`` (building
    the ``Task`` objects not included). ``due``: due now (else spread over the coming
    hour, never due during the measurement)."""
    from tickwork.tasks import Task
    from tickwork.triggers import IntervalTrigger

    store = make_store(url)
    store.start("default")
    trigger = IntervalTrigger(hours=1)
    took = 0.0
    try:
        for low in range(start, stop, CHUNK):
            tasks = [
                Task(
                    "store_scale:noop",
                    trigger,
                    id=f"{'due' if due else 't'}{index:07d}",
                    coalesce=True,
                    max_instances=1,
                    mistrigger_grace_time=None,
                    next_run_time=(
                        now - timedelta(minutes=1)
                        if due
                        else now + timedelta(minutes=10, seconds=index % 3000)
                    ),
                )
                for index in range(low, min(stop, low + CHUNK))
            ]
            started = time.perf_counter()
            store.add_tasks(tasks)
            took += time.perf_counter() - started
    finally:
        store.shutdown()
    return took


async def measure(url: str) -> dict[str, Any]:
    """In a fresh process: start a paused scheduler on the store, then time the store's
    queries for the next run time and the next due batch."""
    import sqlite3  # noqa: F401 (imported before the first RSS reading: not the store's)

    import tickwork.stores.sqlalchemy  # noqa: F401
    from tickwork.schedulers import AsyncIOScheduler

    if url.startswith("postgresql"):
        import psycopg  # noqa: F401
    before = rss()
    store = make_store(url)
    started = time.perf_counter()
    scheduler = AsyncIOScheduler(stores={"default": store}, timezone="UTC")
    scheduler.start(paused=True)  # starts the stores in the call (create or check schema)
    start_ms = (time.perf_counter() - started) * 1000
    now = datetime.now(UTC)
    started = time.perf_counter()
    next_time = await asyncio.to_thread(store.get_next_run_time)
    next_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    await asyncio.to_thread(store.get_next_run_time)
    next_again_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    batch = await asyncio.to_thread(
        # A short lease: the next size's process must find them due again.
        store.acquire_due_tasks,
        now,
        DUE,
        "store-scale",
        timedelta(seconds=0.5),
    )
    batch_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    due = await asyncio.to_thread(store.get_due_tasks, now, DUE)
    due_ms = (time.perf_counter() - started) * 1000
    grown = rss() - before
    await scheduler.shutdown_async()
    return {
        "start_ms": start_ms,
        "next_ms": next_ms,
        "next_again_ms": next_again_ms,
        "batch_ms": batch_ms,
        "due_query_ms": due_ms,
        "batch_tasks": len(batch),
        "due_tasks": len(due),
        "next_is_due": next_time is not None and next_time <= now,
        "rss_mib": grown / 2**20,
    }


def measure_in_child(url: str) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(BENCH) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, str(BENCH / "store_scale.py"), "measure", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
    return {"error": f"no result (exit {proc.returncode}): {tail}"}


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'scale.sqlite'}"
        return
    import psycopg

    name = f"tickwork_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_URL.format(name=name)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def analyze(url: str) -> None:
    """Refresh PostgreSQL's statistics of the table, as autovacuum would after a load."""
    if not url.startswith("postgresql"):
        return
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(f"ANALYZE {TABLE}")


def run(
    quick: bool = False,
    stores: tuple[str, ...] = ("sqlite", "postgresql"),
    sizes: tuple[int, ...] | None = None,
    log: Any = None,
    fresh_statistics: bool = True,
) -> dict[str, Any]:
    """Every store and size; the result bench/run.py shows (``rows``)."""
    sizes = sizes or ((10_000, 100_000) if quick else (10_000, 100_000, 1_000_000))
    rows: list[dict[str, Any]] = []
    for kind in stores:
        with tempfile.TemporaryDirectory(prefix="tickwork-bench-scale-") as tmp:
            try:
                with database(kind, Path(tmp)) as url:
                    now = datetime.now(UTC)
                    seed(url, 0, DUE, now, due=True)
                    stored = 0
                    for size in sizes:
                        started = time.perf_counter()
                        seed_s = seed(url, stored, size, now)
                        wall = time.perf_counter() - started
                        rate = (size - stored) / seed_s if seed_s else 0.0
                        stored = size
                        if fresh_statistics:
                            analyze(url)
                        row = {"store": kind, "tasks": size, "seed_rate": rate, "seed_wall_s": wall}
                        row |= measure_in_child(url)
                        rows.append(row)
                        if log:
                            log(row)
            except Exception as exc:  # an unreachable server: say so and go on
                rows.append({"store": kind, "error": f"{type(exc).__name__}: {exc}"})
    return {"rows": rows, "due": DUE}


def main(argv: list[str]) -> None:
    if argv and argv[0] == "measure":
        print(json.dumps(asyncio.run(measure(argv[1]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10,000 and 100,000 tasks only")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="", help="comma-separated numbers of tasks")
    parser.add_argument(
        "--no-analyze", action="store_true", help="no ANALYZE on PostgreSQL after seeding"
    )
    args = parser.parse_args(argv)
    result = run(
        quick=args.quick,
        stores=tuple(part.strip() for part in args.stores.split(",") if part.strip()),
        sizes=tuple(int(part) for part in args.sizes.split(",") if part.strip()) or None,
        log=lambda row: print(json.dumps(row), file=sys.stderr, flush=True),
        fresh_statistics=not args.no_analyze,
    )
    print(json.dumps(result["rows"]))


if __name__ == "__main__":
    main(sys.argv[1:])
