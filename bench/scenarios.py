"""One benchmark scenario on one library, run in this (fresh) process.

Usage: ``python bench/scenarios.py SCENARIO LIBRARY [key=value ...]``; prints one JSON line
with the measurements (or ``{"error": ...}`` / ``{"skipped": ...}``) and exits.

``bench/run.py`` starts one such process per scenario and library, so no library pays
for another's garbage, imports or threads. Libraries: ``tickwork``, ``asyncz``,
``apscheduler`` (3.x), ``apscheduler4`` (4.0.0a6, which cannot share a virtualenv with
3.x: run.py starts it from ``bench/.venv-aps4``) and, for the floors of the precision,
steady and burst scenarios, ``asyncio`` (bare ``loop.call_at`` timers starting the same
coroutine: what any asyncio scheduler costs at the least). Scenarios and their
parameters are listed in ``SCENARIOS``.

Every library runs with its defaults except where a scenario says otherwise: the same
UTC zone for all, memory store, the asyncio scheduler on a loop of this process, the
default (asyncio) executor or a 10-thread pool. The burst and steady scenarios take
``history=on|off``: tickwork's run history (``on``: its default, a record of every run
written from a thread of its own; ``off``: ``run_history=None``); the peers keep no
record of runs either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import itertools
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC as _UTC_FIXED
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

Result = dict[str, Any]
UTC = ZoneInfo("UTC")
PAGE = os.sysconf("SC_PAGE_SIZE")
LIBRARIES = ("tickwork", "asyncz", "apscheduler", "apscheduler4")
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_DB = "tickwork_bench"


# ---------------------------------------------------------------------------------------
# Task bodies: module-level, so SQL stores can pickle/serialize them by reference.

RUNS = itertools.count()  # next() on a count is atomic under the GIL
LAST_RUN: list[float] = [0.0]
LATENESS: list[float] = []
GRID: list[float] = [0.0, 0.05]  # start, interval (wall-clock seconds) for the precision task


def idle_sync() -> None:
    """A task that is never meant to run during the measurement."""


async def idle_async() -> None:
    """The coroutine twin of :func:`idle_sync`."""


def count_sync() -> None:
    next(RUNS)
    LAST_RUN[0] = time.time()


async def count_async() -> None:
    next(RUNS)
    LAST_RUN[0] = time.time()


async def lateness_async() -> None:
    now = time.time()
    start, interval = GRID
    scheduled = start + math.floor((now - start) / interval + 1e-6) * interval
    LATENESS.append(now - scheduled)


def runs_so_far() -> int:
    # count() has no peek; copy it (cheap) to read the next value.
    return int(repr(RUNS)[6:-1])


# ---------------------------------------------------------------------------------------
# One adapter per library: the same five operations, each in that library's own idiom.


class RecordWatch:
    """Counts the final run records a tickwork run log has written (from the history's
    writer thread) and sets ``done``, noting the wall time, once ``expected`` are in."""

    def __init__(self) -> None:
        self.expected: float = math.inf
        self.finals = 0
        self.done = threading.Event()
        self.done_at = math.nan

    def wrote(self, records: list[Any]) -> None:
        self.finals += sum(1 for record in records if record.finished is not None)
        if self.finals >= self.expected and not self.done.is_set():
            self.done_at = time.time()
            self.done.set()


#: tickwork's security keywords per ``security`` parameter (docs/security.md): records
#: HMAC-signed, or AES-GCM encrypted (the tickwork[crypto] extra), with fixed test keys.
SECURITY: dict[str, dict[str, Any]] = {
    "none": {},
    "signed": {"signing_key": b"bench-signing-key-32-bytes-long!"},
    "encrypted": {"encryption_key": b"bench-encryption-key-32-bytes-ok"},
}


class Adapter:
    """Start a scheduler on the running loop, add tasks, count missed runs, stop.

    ``history``: tickwork's run history on (its default) or off (``run_history=None``);
    the peers have none. With it on and the memory store, ``records`` watches what the
    run log writes."""

    name = "?"

    def __init__(
        self,
        executor: str = "asyncio",
        store: str = "memory",
        url: str = "",
        history: bool = True,
        security: str = "none",
    ) -> None:
        self.security = security  # tickwork only: none, signed or encrypted (SECURITY)
        self.executor = executor
        self.store = store
        self.url = url
        self.history = history
        self.records: RecordWatch | None = None
        self.missed = itertools.count()
        self.scheduler: Any = None

    #: True for a library whose scheduler is driven by coroutines (APScheduler 4): the
    #: scenarios then call ``start_async`` and ``add_async`` instead of the sync methods.
    is_async = False

    def start(self) -> None:
        raise NotImplementedError

    async def start_async(self) -> None:
        self.start()

    def add(
        self,
        fn: Callable[..., Any],
        seconds: float,
        start_at: datetime | None = None,
        next_run_time: datetime | None = None,
        no_grace: bool = False,
    ) -> None:
        raise NotImplementedError

    async def add_async(
        self,
        fn: Callable[..., Any],
        seconds: float,
        start_at: datetime | None = None,
        next_run_time: datetime | None = None,
        no_grace: bool = False,
    ) -> None:
        self.add(fn, seconds, start_at, next_run_time, no_grace)

    def add_bulk(
        self, fn: Callable[..., Any], seconds: float, count: int, next_run_time: datetime | None
    ) -> None:
        raise NotImplementedError(f"{self.name} has no bulk add")

    def missed_count(self) -> int:
        return int(repr(self.missed)[6:-1])

    def _on_missed(self, event: Any) -> None:
        next(self.missed)

    def shutdown(self) -> None:
        # The measurement is done; a peer's teardown quirk is not ours to report.
        with contextlib.suppress(Exception):
            self.scheduler.shutdown(wait=False)


class AsynczStyleAdapter(Adapter):
    """tickwork and asyncz share the asyncz API: one ``add`` serves both."""

    def add(
        self,
        fn: Callable[..., Any],
        seconds: float,
        start_at: datetime | None = None,
        next_run_time: datetime | None = None,
        no_grace: bool = False,
    ) -> None:
        extra: dict[str, Any] = {}
        if no_grace:
            extra["mistrigger_grace_time"] = None
        if start_at is not None:
            extra["start_at"] = start_at
        if next_run_time is not None:
            extra["next_run_time"] = next_run_time
        self.scheduler.add_task(fn, "interval", seconds=seconds, **extra)


class TickworkAdapter(AsynczStyleAdapter):
    name = "tickwork"

    def start(self) -> None:
        from tickwork.events import TASK_MISSED
        from tickwork.executors import ThreadPoolExecutor
        from tickwork.schedulers import AsyncIOScheduler

        options: dict[str, Any] = {"timezone": UTC}
        if self.executor == "threadpool":
            options["executors"] = {"default": ThreadPoolExecutor(max_workers=10)}
        if self.store == "sql":
            from tickwork.stores.sqlalchemy import SQLAlchemyStore  # type: ignore[import-not-found,unused-ignore]

            options["stores"] = {"default": SQLAlchemyStore(url=self.url)}
        elif self.history:
            options["stores"] = {"default": self._watched_memory_store()}
        if not self.history:
            options["run_history"] = None
        options.update(SECURITY[self.security])
        self.scheduler = AsyncIOScheduler(**options)
        self.scheduler.add_listener(self._on_missed, TASK_MISSED)
        self.scheduler.start()

    def _watched_memory_store(self) -> Any:
        """tickwork's memory store (what the scheduler makes when given none), its run log
        telling ``self.records`` what it writes (a sum over each batch: about 30 ns per
        record, on the writer's thread)."""
        from tickwork.runs import RunRecord
        from tickwork.runs.base import RunLog
        from tickwork.runs.memory import MemoryRunLog
        from tickwork.stores.memory import MemoryStore

        watch = self.records = RecordWatch()

        class WatchedRunLog(MemoryRunLog):
            def write(self, records: Iterable[RunRecord]) -> None:
                batch = list(records)
                super().write(batch)
                watch.wrote(batch)

        class WatchedMemoryStore(MemoryStore):
            def _make_run_log(self) -> RunLog:
                return WatchedRunLog()

        return WatchedMemoryStore()

    def add_bulk(
        self, fn: Callable[..., Any], seconds: float, count: int, next_run_time: datetime | None
    ) -> None:
        from tickwork.tasks import Task
        from tickwork.triggers import IntervalTrigger

        extra: dict[str, Any] = {}
        if next_run_time is not None:
            extra["next_run_time"] = next_run_time
        tasks = [
            Task(fn, IntervalTrigger(seconds=seconds, timezone=UTC), **extra) for _ in range(count)
        ]
        self.scheduler.add_tasks(tasks)


class AsynczAdapter(AsynczStyleAdapter):
    name = "asyncz"

    def start(self) -> None:
        from asyncz.events.constants import TASK_MISSED
        from asyncz.executors.pool import ThreadPoolExecutor
        from asyncz.schedulers import AsyncIOScheduler

        options: dict[str, Any] = {"timezone": UTC}
        if self.executor == "threadpool":
            options["executors"] = {"default": ThreadPoolExecutor(max_workers=10)}
        if self.store == "sql":
            from asyncz.stores.sqlalchemy import SQLAlchemyStore

            options["stores"] = {"default": SQLAlchemyStore(database=self.url)}
        self.scheduler = AsyncIOScheduler(**options)
        self.scheduler.add_listener(self._on_missed, TASK_MISSED)
        self.scheduler.start()


class APSchedulerAdapter(Adapter):
    name = "apscheduler"

    def start(self) -> None:
        from apscheduler.events import EVENT_JOB_MISSED
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        options: dict[str, Any] = {"timezone": UTC}
        if self.executor == "threadpool":
            options["executors"] = {"default": ThreadPoolExecutor(max_workers=10)}
        if self.store == "sql":
            from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

            options["jobstores"] = {"default": SQLAlchemyJobStore(url=self.url)}
        self.scheduler = AsyncIOScheduler(**options)
        self.scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        self.scheduler.start()

    def add(
        self,
        fn: Callable[..., Any],
        seconds: float,
        start_at: datetime | None = None,
        next_run_time: datetime | None = None,
        no_grace: bool = False,
    ) -> None:
        extra: dict[str, Any] = {}
        if no_grace:
            extra["misfire_grace_time"] = None
        if start_at is not None:
            extra["start_date"] = start_at
        if next_run_time is not None:
            extra["next_run_time"] = next_run_time
        self.scheduler.add_job(fn, "interval", seconds=seconds, **extra)


class APScheduler4Adapter(Adapter):
    """APScheduler 4.0.0a6: an ``AsyncScheduler`` (memory data store, local event broker,
    its defaults: at most 100 jobs at once, coroutines on its async executor, sync
    functions on its thread pool) started in the background on this loop; one schedule
    per task. Only the memory data store is measured."""

    name = "apscheduler4"
    is_async = True

    def start(self) -> None:
        raise NotImplementedError("APScheduler 4 starts with start_async")

    async def start_async(self) -> None:
        from apscheduler import AsyncScheduler, JobOutcome, JobReleased

        self.scheduler = AsyncScheduler()
        await self.scheduler.__aenter__()
        missed = JobOutcome.missed_start_deadline

        def on_released(event: Any) -> None:
            if event.outcome is missed:
                next(self.missed)

        self.scheduler.subscribe(on_released, JobReleased)
        await self.scheduler.start_in_background()

    def add(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("APScheduler 4 adds with add_async")

    async def add_async(
        self,
        fn: Callable[..., Any],
        seconds: float,
        start_at: datetime | None = None,
        next_run_time: datetime | None = None,
        no_grace: bool = False,
    ) -> None:
        from apscheduler.triggers.interval import IntervalTrigger

        # APScheduler 4's interval fires first at its start time, which defaults to now;
        # the other libraries' first run is one interval after the add. Start it there
        # too, or every "idle" task (add, memory, precision with idle tasks) would run
        # at once during the measurement.
        first = next_run_time or start_at or utc(time.time() + seconds)
        trigger = IntervalTrigger(seconds=seconds, start_time=first)
        extra: dict[str, Any] = {}
        if no_grace:
            extra["misfire_grace_time"] = None
        await self.scheduler.add_schedule(fn, trigger, **extra)

    def shutdown(self) -> None:
        pass  # the process exits without teardown (see main)


ADAPTERS: dict[str, type[Adapter]] = {
    "tickwork": TickworkAdapter,
    "asyncz": AsynczAdapter,
    "apscheduler": APSchedulerAdapter,
    "apscheduler4": APScheduler4Adapter,
}


async def add_tasks(
    adapter: Adapter,
    count: int,
    fn: Callable[..., Any],
    seconds: float,
    start_at: datetime | None = None,
    next_run_time: datetime | None = None,
    no_grace: bool = False,
) -> None:
    """``count`` adds, one call each: a plain loop for the sync APIs (no coroutine per add
    in their timing), awaited calls for APScheduler 4."""
    if adapter.is_async:
        for _ in range(count):
            await adapter.add_async(fn, seconds, start_at, next_run_time, no_grace)
    else:
        for _ in range(count):
            adapter.add(fn, seconds, start_at, next_run_time, no_grace)


# ---------------------------------------------------------------------------------------
# Helpers


def rss() -> int:
    """Resident set size of this process, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


async def drain() -> None:
    """Return once every callback queued on the loop before this call has run (a
    scheduler's wake-up requests, typically), and what they queued in turn, a few
    rounds deep."""
    loop = asyncio.get_running_loop()
    for _ in range(3):
        done = loop.create_future()
        loop.call_soon(done.set_result, None)
        await done


async def sleep_until(wall: float) -> None:
    await asyncio.sleep(max(0.0, wall - time.time()))


class LagProbe:
    """A coroutine sleeping 1 ms in a loop; records how much later than asked it wakes."""

    def __init__(self) -> None:
        self.max_lag = 0.0
        self._task: asyncio.Task[None] | None = None
        self._since = time.perf_counter()

    async def _run(self) -> None:
        while True:
            self._since = time.perf_counter()
            await asyncio.sleep(0.001)
            self.max_lag = max(self.max_lag, time.perf_counter() - self._since - 0.001)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> float:
        # The sleep in flight counts too: when the loop was blocked until the burst ended,
        # the waiter may resume first and stop the probe before it could record the block.
        self.max_lag = max(self.max_lag, time.perf_counter() - self._since - 0.001)
        if self._task is not None:
            self._task.cancel()
        return self.max_lag


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def utc(wall: float) -> datetime:
    return datetime.fromtimestamp(wall, _UTC_FIXED).astimezone(UTC)


def history_flag(history: str) -> bool:
    """The ``history`` parameter (``on`` or ``off``) as a bool."""
    if history not in ("on", "off"):
        raise ValueError(f"history must be on or off, got {history!r}")
    return history == "on"


def sql_url(db: str, lib: str) -> str:
    """A fresh, empty database for this process: a temp SQLite file, or a PostgreSQL
    database dropped and created anew."""
    if db == "sqlite":
        path = Path(tempfile.mkdtemp(prefix=f"tickwork-bench-{lib}-")) / "bench.sqlite"
        return f"sqlite:///{path}"
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DB}")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DB}"


def sql_available(lib: str, db: str) -> str | None:
    """Why this SQL row cannot run, or None."""
    if lib == "tickwork" and importlib.util.find_spec("tickwork.stores.sqlalchemy") is None:
        return "tickwork.stores.sqlalchemy does not exist yet"
    if db == "postgres":
        try:
            import psycopg

            with psycopg.connect(PG_DSN, connect_timeout=3):
                pass
        except Exception as exc:
            return f"PostgreSQL at 127.0.0.1:5432 not reachable ({type(exc).__name__})"
    return None


# ---------------------------------------------------------------------------------------
# Scenarios


async def scenario_add(lib: str, n: int = 10_000) -> Result:
    """Add ``n`` interval tasks (1 h) to a running scheduler, one call each; the time
    includes letting the loop run the wake-ups those calls queued."""
    adapter = ADAPTERS[lib]()
    await adapter.start_async()
    await add_tasks(adapter, 1, idle_sync, 3600)  # warm-up: lazy imports, first-use caches
    await drain()
    gc.collect()
    start = time.perf_counter()
    await add_tasks(adapter, n, idle_sync, 3600)
    added = time.perf_counter()
    await drain()
    end = time.perf_counter()
    return {
        "n": n,
        "rate": n / (end - start),
        "call_us": (added - start) / n * 1e6,
        "drain_s": end - added,
    }


async def scenario_memory(lib: str, n: int = 100_000) -> Result:
    """RSS growth over adding ``n`` interval tasks to a running scheduler (letting the
    loop run every 1,000 adds, as a real program would), per task."""
    adapter = ADAPTERS[lib]()
    await adapter.start_async()
    await add_tasks(adapter, 100, idle_sync, 3600)
    await drain()
    gc.collect()
    before = rss()
    start = time.perf_counter()
    for done in range(0, n, 1000):
        await add_tasks(adapter, min(1000, n - done), idle_sync, 3600)
        await drain()
    await drain()
    gc.collect()
    after = rss()
    return {
        "n": n,
        "bytes_per_task": (after - before) / n,
        "rss_delta": after - before,
        "add_s": time.perf_counter() - start,
    }


async def wait_for_runs(adapter: Adapter, expected: int, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if runs_so_far() + adapter.missed_count() >= expected:
            return True
        await asyncio.sleep(0.005)
    return False


async def scenario_burst(
    lib: str,
    n: int = 10_000,
    executor: str = "asyncio",
    store: str = "memory",
    grace: str = "default",
    timeout: float = 120,
    history: str = "on",
    security: str = "none",
) -> Result:
    """``n`` interval tasks (1 h) whose next run time is the same instant T; measure from T
    until every run has happened (or been reported missed). ``grace=none`` lets every
    run happen however late (to compare throughput where the default grace would make a
    slow library skip everything).

    ``cpu_us_per_run`` is the process's CPU time (all threads) from just before T, per
    run due: until the last run, or, with tickwork's history on and the memory store,
    until the last run's record is written (the history's writer flushes every 0.5 s,
    after a short burst is over: the runs/s figure alone would not show that work)."""
    on = history_flag(history)
    if lib == "asyncio":
        return await burst_floor(n, timeout)
    url = ""
    if store != "memory":
        reason = sql_available(lib, store)
        if reason:
            return {"skipped": reason}
        url = sql_url(store, lib)
    adapter = ADAPTERS[lib](
        executor=executor,
        store="memory" if store == "memory" else "sql",
        url=url,
        history=on,
        security=security,
    )
    await adapter.start_async()
    if adapter.records is not None:
        adapter.records.expected = n
    fn = count_async if executor == "asyncio" else count_sync
    no_grace = grace == "none"
    # Calibrate: time a few adds (due in 2 h, they stay idle) to pick an instant T that
    # leaves just enough time to add the n tasks that are due at T.
    sample = max(10, min(200, n // 20))
    later = utc(time.time() + 7200)
    started = time.perf_counter()
    await add_tasks(adapter, sample, idle_sync, 3600, next_run_time=later, no_grace=no_grace)
    await drain()
    per_task = (time.perf_counter() - started) / sample
    due = time.time() + 0.5 + 1.5 * per_task * n
    added_at = time.time()
    await add_tasks(adapter, n, fn, 3600, next_run_time=utc(due), no_grace=no_grace)
    await drain()
    adding = time.time() - added_at
    if time.time() > due - 0.05:
        return {"error": f"adding {n} tasks took {adding:.1f}s, past the due instant"}
    await sleep_until(due - 0.1)
    probe = LagProbe()
    probe.start()
    cpu0 = time.process_time()
    complete = await wait_for_runs(adapter, n, timeout)
    lag = probe.stop()
    cpu = time.process_time() - cpu0
    runs = runs_so_far()
    elapsed = LAST_RUN[0] - due if runs else float("nan")
    result: Result = {
        "n": n,
        "runs": runs,
        "missed": adapter.missed_count(),
        "complete": complete,
        "elapsed_s": elapsed,
        "runs_per_s": runs / elapsed if runs and elapsed > 0 else 0.0,
        "max_lag_ms": lag * 1000,
        "cpu_s": cpu,
        "cpu_us_per_run": cpu / n * 1e6,
        "cpu_until": "last run",
        "history": history if lib == "tickwork" else "none",
        "add_s": adding,
    }
    watch = adapter.records
    if watch is not None:
        # Waiting in a thread: polling from the loop would add CPU time of its own.
        written = await asyncio.to_thread(watch.done.wait, timeout)
        cpu = time.process_time() - cpu0
        result.update(
            records_written=watch.finals,
            records_s=watch.done_at - due if written else float("nan"),
            history_cpu_s=cpu - result["cpu_s"],
            cpu_us_per_run=cpu / n * 1e6,
            cpu_until="records written" if written else "timeout waiting for the records",
        )
    return result


async def scenario_precision(
    lib: str, idle: int = 0, duration: float = 10.0, interval: float = 0.05
) -> Result:
    """Lateness of a ``interval`` s coroutine task: ``time.time()`` at run start minus its
    scheduled time, over ``duration`` s, with ``idle`` 1 h interval tasks in the store."""
    if lib == "asyncio":
        return await precision_floor(duration, interval)
    adapter = ADAPTERS[lib]()
    await adapter.start_async()
    # (one call each, no yielding: the wake-ups are drained below, before measuring)
    await add_tasks(adapter, idle, idle_sync, 3600)
    await drain()
    gc.collect()
    start = round(time.time() + 0.5, 2)
    GRID[:] = [start, interval]
    await add_tasks(adapter, 1, lateness_async, interval, start_at=utc(start))
    await sleep_until(start + duration + interval / 2)
    samples = LATENESS[2:]  # the first runs pay for lazy imports
    return lateness_result(samples, idle)


async def precision_floor(duration: float, interval: float) -> Result:
    """The best any asyncio scheduler can do: ``loop.call_at`` at each grid point starting
    a coroutine that reads the clock."""
    loop = asyncio.get_running_loop()
    start = round(time.time() + 0.5, 2)
    GRID[:] = [start, interval]
    end = start + duration

    started: set[asyncio.Task[None]] = set()

    def fire(k: int) -> None:
        task = loop.create_task(lateness_async())
        started.add(task)
        task.add_done_callback(started.discard)
        schedule(k + 1)

    def schedule(k: int) -> None:
        wall = start + k * interval
        if wall < end:
            loop.call_at(loop.time() + (wall - time.time()), fire, k)

    schedule(0)
    await sleep_until(end + interval / 2)
    return lateness_result(LATENESS[2:], 0)


def lateness_result(samples: list[float], idle: int) -> Result:
    if not samples:
        return {"error": "the precision task never ran"}
    return {
        "idle": idle,
        "samples": len(samples),
        "p50_ms": statistics.median(samples) * 1000,
        "p99_ms": percentile(samples, 0.99) * 1000,
        "max_ms": max(samples) * 1000,
    }


async def scenario_steady(
    lib: str, tasks: int = 1000, duration: float = 10.0, history: str = "on", spread: int = 0
) -> Result:
    """``tasks`` coroutine tasks every second for ``duration`` s: process CPU time (all
    threads, so tickwork's history writer too) per 1,000 runs.

    ``spread=0``: all on the same 1 s grid, so the scheduler wakes once a second and
    handles every run in one batch (it measures batching). ``spread=1``: task ``i`` runs
    at ``i / tasks`` past each second, so there are ``tasks`` wake-ups a second, one run
    each, as in a real program whose tasks were added at different moments."""
    history_flag(history)
    if lib == "asyncio":
        return await steady_floor(tasks, duration, bool(spread))
    adapter = ADAPTERS[lib](history=history_flag(history))
    await adapter.start_async()
    # 1 ms per add: APScheduler 4's adds are the slowest (about 50 µs each, more when the
    # machine is busy), and the first grid point must still be ahead once all are added.
    start = round(time.time() + 0.6 + tasks * 1e-3, 2)
    for index in range(tasks):
        first = utc(start + index / tasks if spread else start)
        if adapter.is_async:
            await adapter.add_async(count_async, 1, start_at=first)
        else:
            adapter.add(count_async, seconds=1, start_at=first)
    await drain()
    gc.collect()
    if time.time() > start - 0.25:
        return {"error": f"adding {tasks} tasks took too long"}
    return await measure_steady(tasks, duration, start, adapter.missed_count) | {
        "history": history if lib == "tickwork" else "none",
        "spread": spread,
    }


async def measure_steady(
    tasks: int, duration: float, start: float, missed: Callable[[], int]
) -> Result:
    """CPU time and runs over ``duration`` s from 0.25 s before the first grid point."""
    await sleep_until(start - 0.25)
    runs0, cpu0 = runs_so_far(), time.process_time()
    await sleep_until(start + duration - 0.25)
    runs, cpu = runs_so_far() - runs0, time.process_time() - cpu0
    return {
        "tasks": tasks,
        "duration": duration,
        "runs": runs,
        "missed": missed(),
        "cpu_s": cpu,
        "cpu_per_1000": cpu / runs * 1000 if runs else float("nan"),
    }


async def steady_floor(tasks: int, duration: float, spread: bool) -> Result:
    """The floor of the steady load: one ``loop.call_at`` per run, at the same times as
    the scheduled tasks', each starting the same coroutine as an ``asyncio.Task`` (kept in
    a set until done, as a scheduler must) and setting the next second's timer."""
    loop = asyncio.get_running_loop()
    start = round(time.time() + 0.6, 2)
    base = loop.time() + (start - time.time())
    started: set[asyncio.Task[None]] = set()

    def fire(when: float) -> None:
        task = loop.create_task(count_async())
        started.add(task)
        task.add_done_callback(started.discard)
        loop.call_at(when + 1.0, fire, when + 1.0)

    for index in range(tasks):
        when = base + (index / tasks if spread else 0.0)
        loop.call_at(when, fire, when)
    gc.collect()
    return await measure_steady(tasks, duration, start, lambda: 0) | {
        "history": "none",
        "spread": int(spread),
    }


async def burst_floor(n: int, timeout: float) -> Result:
    """The floor of the burst: ``n`` ``loop.call_at`` timers at one instant, each starting
    the same coroutine as an ``asyncio.Task``; measured as :func:`scenario_burst` does."""
    loop = asyncio.get_running_loop()
    due = time.time() + 0.5
    when = loop.time() + (due - time.time())
    started: set[asyncio.Task[None]] = set()

    def fire() -> None:
        task = loop.create_task(count_async())
        started.add(task)
        task.add_done_callback(started.discard)

    for _ in range(n):
        loop.call_at(when, fire)
    gc.collect()
    await sleep_until(due - 0.1)
    probe = LagProbe()
    probe.start()
    cpu0 = time.process_time()
    complete = await wait_for_runs(Adapter(), n, timeout)
    lag = probe.stop()
    cpu = time.process_time() - cpu0
    runs = runs_so_far()
    elapsed = LAST_RUN[0] - due if runs else float("nan")
    return {
        "n": n,
        "runs": runs,
        "missed": 0,
        "complete": complete,
        "elapsed_s": elapsed,
        "runs_per_s": runs / elapsed if runs and elapsed > 0 else 0.0,
        "max_lag_ms": lag * 1000,
        "cpu_s": cpu,
        "cpu_us_per_run": cpu / n * 1e6,
        "cpu_until": "last run",
        "history": "none",
    }


async def scenario_sql_add(
    lib: str, db: str = "sqlite", n: int = 1000, security: str = "none"
) -> Result:
    """Add ``n`` interval tasks to a running scheduler with an SQL store: one call each,
    and (tickwork) one ``add_tasks`` call for all; ``security`` (tickwork): records
    signed or encrypted (``SECURITY``)."""
    reason = sql_available(lib, db)
    if reason:
        return {"skipped": reason}
    url = sql_url(db, lib)
    adapter = ADAPTERS[lib](store="sql", url=url, security=security)
    adapter.start()
    # An explicit first run time (in an hour) for every library: the same work for all,
    # and independent of how each computes a default one.
    later = utc(time.time() + 3600)
    adapter.add(idle_sync, seconds=3600, next_run_time=later)
    await drain()
    # A collection before each timed part, for every library: with a thousand tasks, one
    # full collection that the previous part's garbage makes due (30-40 ms on this
    # machine) is a third of the figure, and which part it falls into is chance.
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        adapter.add(idle_sync, seconds=3600, next_run_time=later)
    await drain()
    single = n / (time.perf_counter() - start)
    result: Result = {"n": n, "single_rate": single}
    try:
        gc.collect()
        start = time.perf_counter()
        adapter.add_bulk(idle_sync, 3600, n, later)
        await drain()
        result["bulk_rate"] = n / (time.perf_counter() - start)
    except NotImplementedError:
        pass
    return result


async def scenario_cron(lib: str, quick: int = 0) -> Result:
    """The rows of ``bench/cron_cost.py`` (written separately), when it exists."""
    path = Path(__file__).with_name("cron_cost.py")
    if not path.exists():
        return {"skipped": "bench/cron_cost.py does not exist yet"}
    spec = importlib.util.spec_from_file_location("cron_cost", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    rows = module.run(quick=bool(quick))
    return {"rows": rows, "build": module.build_costs(quick=bool(quick))}


def load_script(name: str) -> Any:
    """bench/<name>.py as a module (registered under its name: its workers and its tasks
    refer to it by that name)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def scenario_fleet(lib: str, quick: int = 0) -> Result:
    """The rows of ``bench/fleet_scale.py`` (1, 2 and 4 schedulers on one store)."""
    module = load_script("fleet_scale")
    result: Result = await asyncio.to_thread(module.run, quick=bool(quick))
    return result


async def scenario_store_scale(lib: str, quick: int = 0) -> Result:
    """The rows of ``bench/store_scale.py`` (a scheduler on stores of 10k to 1M tasks)."""
    module = load_script("store_scale")
    result: Result = await asyncio.to_thread(module.run, quick=bool(quick))
    return result


SCENARIOS: dict[str, Callable[..., Awaitable[Result]]] = {
    "add": scenario_add,
    "memory": scenario_memory,
    "burst": scenario_burst,
    "precision": scenario_precision,
    "steady": scenario_steady,
    "sql_add": scenario_sql_add,
    "cron": scenario_cron,
    "fleet": scenario_fleet,
    "store_scale": scenario_store_scale,
}


def parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, _, raw = item.partition("=")
        value: Any = raw
        for convert in (int, float):
            try:
                value = convert(raw)
                break
            except ValueError:
                continue
        params[key] = value
    return params


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] not in SCENARIOS:
        sys.exit(f"usage: scenarios.py {{{','.join(SCENARIOS)}}} LIBRARY [key=value ...]")
    scenario, lib, params = argv[0], argv[1], parse_params(argv[2:])
    # Log records are still made (their cost is the library's), but not printed: a
    # terminal full of "missed by" warnings would measure the terminal.
    logging.getLogger().addHandler(logging.NullHandler())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        result = loop.run_until_complete(SCENARIOS[scenario](lib, **params))
    except Exception as exc:
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result.update({"scenario": scenario, "library": lib, "params": params})
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    # Skip the teardown: a million tasks' garbage and a peer's threads are not measured,
    # and waiting for them only slows the run down.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
