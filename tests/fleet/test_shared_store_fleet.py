"""Several scheduler processes share one store (PostgreSQL, MariaDB, Redis, SQLite):
every slot runs once, also when a process is killed mid-run or the database goes away.

Each worker records every run it hands over, finishes or reports missed (see
``fleet_worker.py``); :func:`fleet_support.judge` then checks every slot of every task.
Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import servers
import sqlalchemy
from fleet_support import Record, add_tasks, fleet, interval_task, judge, tick_tasks
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tickwork.stores import BaseStore
from tickwork.stores.redis import RedisStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore

pytestmark = pytest.mark.slow

#: Seconds each fleet runs. The issue asked for 20 s; 6.5 s (judged: the 3 to 4 whole
#: seconds clear of the margins, 150 to 200 slots of 50 tasks) keeps the fleet suite
#: within its time budget. Longer runs: see docs/many-workers.md.
STEADY = 6.5
#: Slots this close to the start or the end are not judged (processes still starting,
#: or shutting down).
MARGIN = 1.5


@contextlib.contextmanager
def shared_store(backend: str, tmp_path: Path) -> Iterator[tuple[str, str, BaseStore]]:
    """(worker kind, location, a store object on it) on a fresh database / prefix."""
    if backend in ("postgresql", "mariadb"):
        with servers.temporary_database(backend) as url:
            yield "sql", url, SQLAlchemyStore(url)
    elif backend == "redis":
        url = servers.redis_url()
        with servers.redis_prefix() as prefix:
            yield "redis", f"{url}#{prefix}", RedisStore(url, prefix=prefix)
    else:
        url = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
        yield "sql", url, SQLAlchemyStore(url)


def report(title: str, records: list[Record], verdict: object) -> None:
    by_pid = Counter(r.pid for r in records if r.code == "EXE")
    print(f"\n{title}: {verdict}; executions per process: {dict(by_pid)}")


@pytest.mark.parametrize(
    ("backend", "workers"),
    [
        pytest.param("postgresql", 4, marks=pytest.mark.external_service("postgresql")),
        pytest.param("mariadb", 3, marks=pytest.mark.external_service("mariadb")),
        pytest.param("redis", 3, marks=pytest.mark.external_service("redis")),
        pytest.param("sqlite", 2),
    ],
)
def test_a_fleet_runs_every_slot_exactly_once(backend: str, workers: int, tmp_path: Path) -> None:
    tasks = tick_tasks(50 if backend != "sqlite" else 10)
    with shared_store(backend, tmp_path) as (kind, location, store):
        add_tasks(store, tasks)
        with fleet(tmp_path, kind, location) as running:
            running.start(workers)
            first = time.time() + MARGIN
            time.sleep(STEADY)
            last = time.time() - MARGIN
        records = running.records()
    verdict = judge(records, [t.id for t in tasks], first, last)
    report(f"{backend}, {workers} schedulers", records, verdict)
    assert verdict.duplicates == [], running.errors()
    assert verdict.lost == [], running.errors()
    assert verdict.missed == verdict.skipped == 0, running.errors()
    assert verdict.slots >= len(tasks) * 3


@pytest.mark.external_service("postgresql")
@pytest.mark.timeout(90)
def test_a_killed_scheduler_s_runs_are_taken_over(tmp_path: Path) -> None:
    lease = 3.0
    # Every run takes 0.3 s, so the victim dies with runs in progress. "patient" tasks
    # have no grace limit: their abandoned runs must run again; the others' (1 s grace)
    # must be reported missed. coalesce=False: every slot a dead scheduler's claim
    # delays is run or reported one by one (coalescing folds them without a trace).
    patient = [
        interval_task(
            f"patient-{n}",
            "fleet_tasks:slow",
            1,
            args=(0.3,),
            coalesce=False,
            mistrigger_grace_time=None,
        )
        for n in range(5)
    ]
    strict = [
        interval_task(f"strict-{n:02d}", "fleet_tasks:slow", 1, args=(0.3,), coalesce=False)
        for n in range(20)
    ]
    with shared_store("postgresql", tmp_path) as (kind, location, store):
        add_tasks(store, [*patient, *strict])
        with fleet(tmp_path, kind, location, "--lease", str(lease)) as running:
            running.start(3)
            first = time.time() + MARGIN
            time.sleep(2)
            victim = busiest_process(running.records)
            killed_at = running.kill(victim)
            time.sleep(lease + 2.5)
            last = time.time() - MARGIN
        records = running.records()
    verdict = judge(records, [t.id for t in patient + strict], first, last)
    report("postgresql, 3 schedulers, one killed", records, verdict)
    assert verdict.duplicates == []
    lost = [(task_id, round(slot - killed_at, 2)) for task_id, slot in verdict.lost]
    assert lost == [], f"relative to the kill: {lost}\n{running.errors()}"
    assert all(r.pid != victim for r in records if r.wall > killed_at)

    # What the victim had handed over and not finished, and what became of it.
    ended = {(r.task_id, r.slot) for r in records if r.pid == victim and r.code == "EXE"}
    abandoned = {(r.task_id, r.slot) for r in records if r.pid == victim and r.code == "SUB"}
    abandoned -= ended
    survivors = [r for r in records if r.pid != victim and (r.task_id, r.slot) in abandoned]
    rerun = {(r.task_id, r.slot) for r in survivors if r.code == "EXE"}
    missed = {(r.task_id, r.slot) for r in survivors if r.code == "MIS"}
    assert {key for key in abandoned if key[0].startswith("patient")} == rerun
    assert {key for key in abandoned if key[0].startswith("strict")} == missed
    assert rerun
    failover = min(r.wall for r in survivors) - killed_at
    print(
        f"{len(abandoned)} runs abandoned by the SIGKILLed scheduler: {len(rerun)} run again, "
        f"{len(missed)} reported missed, {failover:.2f} s after the kill (lease {lease} s)"
    )
    assert lease - 0.5 < failover < lease + 1.5
    # Until then they counted as in progress: the next slots of those tasks were
    # skipped for max_instances, and reported so; never after the take-over.
    skipped = [r.wall - killed_at for r in records if r.code == "MAX" and r.wall > killed_at]
    assert all(delay < lease + 1.5 for delay in skipped), skipped


def busiest_process(records: Callable[[], list[Record]]) -> int:
    """Wait until 0.1 s past a whole second; return the worker with the most runs in
    progress then, among those running a "patient" task."""
    now = time.time()
    time.sleep(math.floor(now) + 1.1 - now)
    found = records()
    ended = {(r.pid, r.task_id, r.slot) for r in found if r.code == "EXE"}
    running = [r for r in found if r.code == "SUB" and (r.pid, r.task_id, r.slot) not in ended]
    candidates = {r.pid for r in running if r.task_id.startswith("patient")}
    assert candidates, "no patient run in progress"
    return max(candidates, key=lambda pid: sum(r.pid == pid for r in running))


@pytest.mark.external_service("postgresql")
@pytest.mark.timeout(90)
def test_a_database_outage_loses_and_repeats_nothing(tmp_path: Path) -> None:
    # Half the tasks run every slot however late, half report late slots missed.
    patient = tick_tasks(10, prefix="patient", coalesce=False, mistrigger_grace_time=None)
    strict = tick_tasks(10, prefix="strict", coalesce=False)
    with shared_store("postgresql", tmp_path) as (kind, location, store):
        add_tasks(store, [*patient, *strict])
        database = make_url(location).database
        with fleet(tmp_path, kind, location) as running:
            running.start(3)
            first = time.time() + MARGIN
            time.sleep(2.5)
            outage = database_outage(database, seconds=3.0)
            time.sleep(4.5)
            last = time.time() - MARGIN
        records = running.records()
        check = SQLAlchemyStore(location)
        check.start("check")
        stored = sorted(t.id for t in check.get_all_tasks())
        check.shutdown()
    print(f"\noutage of database {database}: {outage:.1f} s")
    for group in (patient, strict):
        verdict = judge(records, [t.id for t in group], first, last)
        report(f"{group[0].id[:-3]} tasks across the outage", records, verdict)
        assert verdict.duplicates == [], running.errors()
        assert verdict.lost == [], running.errors()
    patient_verdict = judge(records, [t.id for t in patient], first, last)
    assert patient_verdict.missed == patient_verdict.skipped == 0
    assert stored == sorted(t.id for t in [*patient, *strict])


def database_outage(database: str | None, seconds: float) -> float:
    """Cut every connection to ``database`` and refuse new ones for ``seconds`` (what a
    server restart looks like to the clients, without disturbing other databases)."""
    admin = sqlalchemy.create_engine(
        servers.postgres_url(), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    began = time.monotonic()
    try:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            try:
                conn.execute(
                    sqlalchemy.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"
                    ),
                    {"d": database},
                )
                time.sleep(seconds)
            finally:
                conn.execute(sqlalchemy.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
    finally:
        admin.dispose()
    return time.monotonic() - began
