"""A hung database holds up only its own store: the other stores keep their schedule,
the event loop keeps running, shutdown is not held hostage, and the store is reported.

Found on the earlier core with a PostgreSQL table lock held for 8 s by another
connection: a memory-store task of the same scheduler ran 0 times; ``get_tasks("pg")``
from a coroutine blocked the event loop 5 s; shutdown took 6.8 s.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import servers

from tickwork.events import STORE_RECOVERED, STORE_UNAVAILABLE, TASK_EXECUTED
from tickwork.schedulers import AsyncIOScheduler
from tickwork.stores import MemoryStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore

pytestmark = [pytest.mark.external_service("postgresql"), pytest.mark.slow]


def pg_job() -> None:
    """A task of the PostgreSQL store."""


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with servers.temporary_database("postgresql") as url:
        yield url


def _lock_table(url: str, table: str, seconds: float, locked: threading.Event) -> None:
    """Hold an ACCESS EXCLUSIVE lock on ``table`` for ``seconds`` (another connection)."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        locked.set()
        time.sleep(seconds)
        connection.rollback()


async def _worst_lag(stop: asyncio.Event) -> float:
    """The worst lateness of a 10 ms ticker on the loop until ``stop``."""
    worst = 0.0
    while not stop.is_set():
        before = time.monotonic()
        await asyncio.sleep(0.01)
        worst = max(worst, time.monotonic() - before - 0.01)
    return worst


async def test_a_locked_table_stalls_only_its_own_store(database: str) -> None:
    table = f"hung_{uuid.uuid4().hex[:8]}"
    events: list[Any] = []
    memory_runs: list[float] = []

    async def tick() -> None:
        memory_runs.append(time.monotonic())

    scheduler = AsyncIOScheduler(
        stores={
            "default": MemoryStore(),
            "pg": SQLAlchemyStore(database, tablename=table, io_timeout=1),
        },
        timezone="UTC",
    )
    scheduler.add_listener(events.append, STORE_UNAVAILABLE | STORE_RECOVERED | TASK_EXECUTED)
    scheduler.add_task(tick, "interval", seconds=0.2, id="tick")
    scheduler.add_task(pg_job, "interval", seconds=0.5, id="pg-job", store="pg")
    scheduler.start()
    await asyncio.sleep(0.3)
    locked = threading.Event()
    holder = threading.Thread(target=_lock_table, args=(database, table, 4.0, locked))
    holder.start()
    assert await asyncio.to_thread(locked.wait, 5)
    stop = asyncio.Event()
    lag = asyncio.create_task(_worst_lag(stop))
    started = time.monotonic()
    # A store read from a coroutine, during the lock: its twin runs off the loop, and
    # the store's own bound ends it.
    with pytest.raises(Exception, match=r"io_timeout|timed out|unavailable"):
        await scheduler.get_tasks_async("pg")
    await asyncio.sleep(max(0.0, 3.5 - (time.monotonic() - started)))
    during = [t for t in memory_runs if started <= t <= started + 3.5]
    stop.set()
    worst_lag = await lag
    await asyncio.to_thread(holder.join)
    await asyncio.sleep(2.5)  # the store answers again; backoff ends within 2 s
    shutdown_started = time.monotonic()
    await scheduler.shutdown_async()
    shutdown_took = time.monotonic() - shutdown_started

    assert len(during) >= 14, f"the memory task ran {len(during)} times in 3.5 s"
    assert worst_lag < 0.25, f"the event loop stalled {worst_lag:.2f} s"
    codes = [e.code for e in events if e.code != TASK_EXECUTED]
    assert STORE_UNAVAILABLE in codes
    assert [e.alias for e in events if e.code == STORE_UNAVAILABLE] == ["pg"]
    assert STORE_RECOVERED in codes
    pg_runs = [e for e in events if e.code == TASK_EXECUTED and e.task_id == "pg-job"]
    assert pg_runs, "the PostgreSQL store never ran its task again"
    assert shutdown_took < 2.0


async def test_shutdown_during_a_hung_store_is_bounded(database: str) -> None:
    table = f"hung_{uuid.uuid4().hex[:8]}"
    scheduler = AsyncIOScheduler(
        stores={"pg": SQLAlchemyStore(database, tablename=table, io_timeout=1)},
        timezone="UTC",
    )
    scheduler.add_task(pg_job, "interval", seconds=0.3, store="pg")
    scheduler.start()
    await asyncio.sleep(0.5)
    locked = threading.Event()
    holder = threading.Thread(target=_lock_table, args=(database, table, 5.0, locked))
    holder.start()
    assert await asyncio.to_thread(locked.wait, 5)
    await asyncio.sleep(0.5)  # a batch is now waiting on the lock
    started = time.monotonic()
    await scheduler.shutdown_async()
    took = time.monotonic() - started
    await asyncio.to_thread(holder.join)
    assert took < 3.0, f"shutdown took {took:.1f} s with the table locked"
