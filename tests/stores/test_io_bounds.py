"""Every SQL and Redis store call has a bound on its I/O (``io_timeout``).

Found in production: a PostgreSQL table lock held by another connection for 8 s made
every SQL store call hang for the whole 8 s (no statement or lock timeout, no socket
timeout). These tests hold real locks on the real servers (a table lock, a row lock, a
paused Redis, a server that accepts connections and never answers) and check that each
store call gives up after about ``io_timeout`` with a
:class:`~tickwork.exceptions.StoreUnavailableError` that names the store, the operation
and the bound, and that the store works again once the lock is gone.
"""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import servers
import sqlalchemy
from sqlalchemy import event
from sqlalchemy.pool import NullPool
from storetest_funcs import NOW, at, make_task
from storetest_support import StoreMaker

from tickwork.exceptions import ConfigurationError, StoreUnavailableError
from tickwork.stores import BaseStore
from tickwork.stores.redis import RedisStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore

LEASE = timedelta(seconds=30)
#: A call bounded by io_timeout=1 must give up well before this (seconds).
LIMIT = 3.0

#: The store calls checked under a lock: operation named in the error -> the call.
CALLS: dict[str, Callable[[BaseStore], object]] = {
    "query due tasks": lambda store: store.get_due_tasks(NOW),
    "claim due tasks": lambda store: store.acquire_due_tasks(NOW, 10, "one", LEASE),
    "query the next run time": lambda store: store.get_next_run_time(),
    "add tasks": lambda store: store.add_task(make_task(f"new-{uuid.uuid4().hex[:8]}")),
    "list tasks": lambda store: store.get_all_tasks(),
}


def timed_out(
    call: Callable[[], object], operation: str, bound: str, alias: str = "default"
) -> float:
    """Run ``call``, expect the bounded StoreUnavailableError; return the seconds it took."""
    start = time.monotonic()
    with pytest.raises(StoreUnavailableError) as info:
        call()
    elapsed = time.monotonic() - start
    message = str(info.value)
    assert f"store {alias!r} could not {operation} within its io_timeout of {bound} s" in message
    assert info.value.operation == operation
    assert info.value.io_timeout == float(bound)
    return elapsed


def works(store: BaseStore) -> None:
    """Every call of :data:`CALLS` succeeds."""
    for call in CALLS.values():
        call(store)


# -- options ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "5", True, None])
def test_io_timeout_must_be_a_positive_finite_number(value: object, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=f"io_timeout .* got {value!r}"):
        SQLAlchemyStore(f"sqlite:///{tmp_path / 'db.sqlite'}", io_timeout=value)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=f"io_timeout .* got {value!r}"):
        RedisStore("redis://127.0.0.1:6379/0", io_timeout=value)  # type: ignore[arg-type]


def test_the_redis_client_built_from_a_url_carries_the_bound() -> None:
    store = RedisStore("redis://127.0.0.1:6379/0", io_timeout=0.5)
    options = store.client.get_connection_kwargs()
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (0.5, 0.5)
    store.shutdown()
    # Options in the URL are the user's, and win.
    store = RedisStore("redis://127.0.0.1:6379/0?socket_timeout=2", io_timeout=0.5)
    assert store.client.get_connection_kwargs()["socket_timeout"] == 2.0
    store.shutdown()


# -- SQL: locks held by another connection ------------------------------------------------


@contextlib.contextmanager
def table_locked(store: SQLAlchemyStore) -> Iterator[None]:
    """Hold a lock on the store's task table from another connection: PostgreSQL
    ``ACCESS EXCLUSIVE`` in an open transaction, MariaDB ``LOCK TABLES ... WRITE``."""
    rival = sqlalchemy.create_engine(store.engine.url, poolclass=NullPool)
    try:
        with rival.connect() as conn:
            if store.engine.dialect.name == "postgresql":
                with conn.begin():
                    conn.exec_driver_sql(f"LOCK TABLE {store.tablename} IN ACCESS EXCLUSIVE MODE")
                    yield
            else:
                conn.exec_driver_sql(f"LOCK TABLES {store.tablename} WRITE")
                try:
                    yield
                finally:
                    conn.exec_driver_sql("UNLOCK TABLES")
    finally:
        rival.dispose()


@contextlib.contextmanager
def row_locked(store: SQLAlchemyStore, task_id: str) -> Iterator[None]:
    """Hold the row lock of one task (``SELECT ... FOR UPDATE`` in an open transaction)."""
    rival = sqlalchemy.create_engine(store.engine.url, poolclass=NullPool)
    key: Any = task_id.encode() if store.engine.dialect.name != "postgresql" else task_id
    try:
        with rival.connect() as conn, conn.begin():
            conn.exec_driver_sql(
                f"SELECT id FROM {store.tablename} WHERE id = %(id)s FOR UPDATE", {"id": key}
            )
            yield
    finally:
        rival.dispose()


@pytest.mark.parametrize("operation", list(CALLS))
def test_a_locked_table_times_calls_out_instead_of_hanging(
    make_sql_server_store: StoreMaker, operation: str
) -> None:
    store = make_sql_server_store(io_timeout=1)
    assert isinstance(store, SQLAlchemyStore)
    store.add_tasks([make_task("a", at(-1)), make_task("b", at(5))])
    with table_locked(store):
        elapsed = timed_out(lambda: CALLS[operation](store), operation, "1")
    assert elapsed < LIMIT, f"{operation} took {elapsed:.2f} s"
    works(store)  # the lock is gone: every call goes through again
    assert {"a", "b"} <= {task.id for task in store.get_all_tasks()}


def test_a_locked_row_times_out_its_write_and_claims_skip_it(
    make_sql_server_store: StoreMaker,
) -> None:
    store = make_sql_server_store(io_timeout=1)
    assert isinstance(store, SQLAlchemyStore)
    a, b = make_task("a", at(-2)), make_task("b", at(-1))
    store.add_tasks([a, b])
    with row_locked(store, "a"):
        # A claim never waits for a row another connection holds: it skips it.
        start = time.monotonic()
        assert [task.id for task in store.acquire_due_tasks(NOW, 10, "one", LEASE)] == ["b"]
        assert time.monotonic() - start < 0.5
        # A write waits for it, up to the bound, once: a lock wait timeout is not a
        # conflict to run again (that would be 6 waits of the bound).
        a.next_run_time = at(10)
        elapsed = timed_out(lambda: store.update_task(a), "update a task", "1")
        assert elapsed < LIMIT, f"update_task took {elapsed:.2f} s"
    store.update_task(a)
    assert store.lookup_task("a").next_run_time == at(10)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("postgresql", marks=pytest.mark.external_service("postgresql")),
        pytest.param("mariadb", marks=pytest.mark.external_service("mariadb")),
        "sqlite",
    ],
)
def test_an_engine_passed_in_gets_the_session_bounds(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = request.getfixturevalue(f"{'postgres' if kind == 'postgresql' else kind}_database")
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:  # pooled before the store exists: bounded all the same
        conn.exec_driver_sql("SELECT 1")
    store = SQLAlchemyStore(engine=engine, tablename=f"t_{uuid.uuid4().hex[:8]}", io_timeout=1.5)
    store.start("default")
    queries = {
        "postgresql": "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')",
        "mariadb": "SELECT @@innodb_lock_wait_timeout, @@lock_wait_timeout, @@max_statement_time",
        "sqlite": "PRAGMA busy_timeout",
    }
    expected = {
        "postgresql": ("1500ms", "1500ms"),
        "mariadb": (2, 2, 1.5),  # whole seconds where the server wants them, rounded up
        "sqlite": (1500,),
    }
    with engine.connect() as conn:
        assert tuple(conn.exec_driver_sql(queries[kind]).one()) == expected[kind]
    if kind != "sqlite":
        store.add_task(make_task("a", at(-1)))
        with table_locked(store):
            elapsed = timed_out(lambda: store.get_due_tasks(NOW), "query due tasks", "1.5")
        assert elapsed < LIMIT
    store.shutdown()
    assert not event.contains(engine, "checkout", store._bounds._on_checkout)
    engine.dispose()


def test_sqlite_waits_for_the_write_lock_up_to_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SQLAlchemyStore(f"sqlite:///{path}", io_timeout=0.5)
    store.start("default")
    store.add_task(make_task("a", at(-1)))
    holder = sqlite3.connect(path, timeout=0)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the database's write lock
        assert [task.id for task in store.get_due_tasks(NOW)] == ["a"]  # WAL: reads go on
        for operation in ("claim due tasks", "add tasks"):
            elapsed = timed_out(lambda: CALLS[operation](store), operation, "0.5")  # noqa: B023
            assert elapsed < 2.0
    finally:
        holder.rollback()
        holder.close()
    works(store)
    store.shutdown()


def test_conflict_retries_stop_at_the_bound(make_sql_server_store: StoreMaker) -> None:
    # Deadlocks are run again at once (see test_sql_lock_conflicts), but only while the
    # call is within its bound: a server that keeps picking this call as the victim
    # after a wait must not stretch it to six waits.
    store = make_sql_server_store(io_timeout=0.3)
    assert isinstance(store, SQLAlchemyStore)
    store.add_task(make_task("a", at(-1)))
    attempts = 0
    mysql = store.engine.dialect.name in ("mysql", "mariadb")

    def slow_deadlock(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        nonlocal attempts
        if statement.lstrip().upper().startswith("UPDATE"):
            attempts += 1
            time.sleep(0.12)  # the wait before the server picks its victim
            if mysql:
                import pymysql

                raise pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")
            import psycopg

            raise psycopg.errors.DeadlockDetected("deadlock detected")

    event.listen(store.engine, "before_cursor_execute", slow_deadlock)
    start = time.monotonic()
    try:
        with pytest.raises(StoreUnavailableError, match="could not claim due tasks"):
            store.acquire_due_tasks(NOW, 10, "one", LEASE)
    finally:
        event.remove(store.engine, "before_cursor_execute", slow_deadlock)
    assert 2 <= attempts <= 4
    assert time.monotonic() - start < 1.0


# -- servers that accept connections and never answer -------------------------------------


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port on the loopback that accepts connections and never sends a byte: a hung
    server, as the drivers see one."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize(
    ("url", "bound", "limit"),
    [
        # libpq's connect_timeout is whole seconds, at least 2.
        ("postgresql+psycopg://postgres@127.0.0.1:{port}/test", "1", 3.5),
        ("mysql+pymysql://root@127.0.0.1:{port}/test", "1", 3.5),
    ],
    ids=["psycopg", "pymysql"],
)
def test_an_sql_server_that_never_answers_times_out(
    silent_server: int, url: str, bound: str, limit: float
) -> None:
    store = SQLAlchemyStore(url.format(port=silent_server), io_timeout=float(bound))
    elapsed = timed_out(lambda: store.start("default"), "create its schema", bound)
    assert elapsed < limit
    store.shutdown()


def test_a_redis_server_that_never_answers_times_out(silent_server: int) -> None:
    store = RedisStore(f"redis://127.0.0.1:{silent_server}/0", io_timeout=0.5)
    elapsed = timed_out(lambda: store.start("default"), "start", "0.5")
    assert elapsed < 1.5
    store.shutdown()


# -- Redis: a paused server ---------------------------------------------------------------


@pytest.fixture
def redis_admin() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(servers.redis_url(), socket_timeout=10)
    yield client
    client.close()


@contextlib.contextmanager
def redis_paused(admin: redis.Redis, milliseconds: int, mode: str) -> Iterator[None]:
    """``CLIENT PAUSE`` the server (``WRITE``: scripts wait, reads and this connection's
    ``CLIENT UNPAUSE`` go through), and unpause it whatever happens."""
    admin.execute_command("CLIENT", "PAUSE", milliseconds, mode)
    try:
        yield
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")


@pytest.mark.external_service("redis")
def test_a_paused_redis_times_calls_out_instead_of_hanging(redis_admin: redis.Redis) -> None:
    with servers.redis_prefix() as prefix:
        store = RedisStore(servers.redis_url(), prefix=prefix, io_timeout=0.5)
        store.start("default")
        store.add_tasks([make_task("a", at(-1)), make_task("b", at(5))])
        # Every call below is a Lua script, which a WRITE pause holds back.
        scripted = [op for op in CALLS if op != "list tasks"]
        with redis_paused(redis_admin, 3000, "WRITE"):
            for operation in scripted:
                elapsed = timed_out(lambda: CALLS[operation](store), operation, "0.5")  # noqa: B023
                assert elapsed < 2.0, f"{operation} took {elapsed:.2f} s"
        works(store)
        assert {"a", "b"} <= {task.id for task in store.get_all_tasks()}
        store.shutdown()


@pytest.mark.external_service("redis")
def test_a_redis_paused_for_everyone_times_reads_out(redis_admin: redis.Redis) -> None:
    with servers.redis_prefix() as prefix:
        store = RedisStore(servers.redis_url(), prefix=prefix, io_timeout=0.5)
        store.start("default")
        store.add_task(make_task("a", at(-1)))
        # An ALL pause holds back this connection's UNPAUSE too: keep it short.
        with redis_paused(redis_admin, 1200, "ALL"):
            elapsed = timed_out(store.get_all_tasks, "list tasks", "0.5")
        assert elapsed < 1.0
        assert [task.id for task in store.get_all_tasks()] == ["a"]
        store.shutdown()
