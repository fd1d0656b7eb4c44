"""Add and due-query throughput of every store backend (tasks/s).

    python bench/store_throughput.py [--tasks 2000]

Backends whose server is unreachable are skipped with a note. Each server backend works in
a database / key prefix of its own, removed afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tickwork.stores import BaseStore, FileStore, MemoryStore, RedisStore, SQLAlchemyStore
from tickwork.tasks import Task
from tickwork.triggers import IntervalTrigger

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def job(n: int) -> None:
    """The task function (stored by reference)."""


def make_tasks(count: int, prefix: str) -> list[Task]:
    trigger = IntervalTrigger(hours=1, start_at=NOW)
    return [
        Task(
            job,
            trigger,
            args=[i],
            id=f"{prefix}{i}",
            coalesce=True,
            max_instances=1,
            mistrigger_grace_time=None,
            next_run_time=NOW + timedelta(seconds=i % 60),
        )
        for i in range(count)
    ]


@contextmanager
def sql_database(admin_url: str, template: str) -> Iterator[str]:
    import sqlalchemy

    name = f"tickwork_bench_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    try:
        yield template.format(name=name)
    finally:
        with engine.connect() as connection:
            if admin_url.startswith("postgresql"):
                connection.execute(sqlalchemy.text(f"DROP DATABASE {name} WITH (FORCE)"))
            else:
                connection.execute(sqlalchemy.text(f"DROP DATABASE {name}"))
        engine.dispose()


@contextmanager
def backend(kind: str, tmp: Path) -> Iterator[Callable[[], BaseStore]]:
    if kind == "memory":
        yield MemoryStore
    elif kind == "file":
        yield lambda: FileStore(tmp / "tasks")
    elif kind == "sqlite":
        yield lambda: SQLAlchemyStore(url=f"sqlite:///{tmp / 'tasks.sqlite'}")
    elif kind == "postgresql":
        with sql_database(
            "postgresql+psycopg://postgres@127.0.0.1:5432/test",
            "postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
        ) as url:
            yield lambda: SQLAlchemyStore(url=url)
    elif kind == "mariadb":
        with sql_database(
            "mysql+pymysql://root@127.0.0.1:3306/test", "mysql+pymysql://root@127.0.0.1:3306/{name}"
        ) as url:
            yield lambda: SQLAlchemyStore(url=url)
    else:
        prefix = f"tickwork_bench_{uuid.uuid4().hex[:8]}"
        try:
            yield lambda: RedisStore(prefix=prefix)
        finally:
            import redis

            client = redis.Redis()
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)


def measure(factory: Callable[[], BaseStore], count: int) -> dict[str, float]:
    store = factory()
    store.start("default")
    try:
        single = make_tasks(min(count, 500), "s")
        started = time.perf_counter()
        for task in single:
            store.add_task(task)
        single_rate = len(single) / (time.perf_counter() - started)
        bulk = make_tasks(count, "b")
        started = time.perf_counter()
        store.add_tasks(bulk)
        bulk_rate = len(bulk) / (time.perf_counter() - started)
        started = time.perf_counter()
        seen = 0
        for _ in range(0, len(bulk) + len(single), 256):  # each query returns a full batch
            seen += len(store.get_due_tasks(NOW + timedelta(hours=1), 256))
        due_rate = seen / (time.perf_counter() - started)
        return {"add": single_rate, "add_tasks": bulk_rate, "due query": due_rate}
    finally:
        store.shutdown()


def serializer_cost(count: int) -> tuple[float, float]:
    """Microseconds per task to encode and to decode with the JSON serializer (the default
    of every persistent store): the part of an add or a due query that is not I/O."""
    from tickwork.serializers import JSONSerializer

    serializer = JSONSerializer()
    tasks = make_tasks(count, "j")
    encode = decode = float("inf")
    for _ in range(3):  # the best of three: the machine's noise is not the serializer's
        started = time.perf_counter()
        blobs = [serializer.serialize(task) for task in tasks]
        encode = min(encode, (time.perf_counter() - started) / count * 1e6)
        started = time.perf_counter()
        for blob in blobs:
            serializer.deserialize(blob)
        decode = min(decode, (time.perf_counter() - started) / count * 1e6)
    return encode, decode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000)
    args = parser.parse_args()
    print(
        "| backend | add (tasks/s) | add_tasks bulk (tasks/s) | due query, batches of 256 (tasks/s) |"
    )
    print("|---|---|---|---|")
    for kind in ["memory", "file", "sqlite", "postgresql", "mariadb", "redis"]:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                with backend(kind, Path(tmp)) as factory:
                    figures = measure(factory, args.tasks)
            except Exception as exc:  # an unreachable server: say so and go on
                print(f"| {kind} | skipped: {type(exc).__name__}: {exc} | | |")
                continue
        print(
            f"| {kind} | {figures['add']:,.0f} | {figures['add_tasks']:,.0f} | {figures['due query']:,.0f} |"
        )
    encode, decode = serializer_cost(args.tasks)
    print(f"\nJSON serializer, per interval task: encode {encode:.1f} us, decode {decode:.1f} us")


if __name__ == "__main__":
    main()
