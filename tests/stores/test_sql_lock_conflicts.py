"""A write transaction the database aborts to break a deadlock is run again, not
reported as an outage.

Several schedulers claiming and writing back rows of one table make PostgreSQL and
MariaDB pick deadlock victims now and then. Reporting the store unavailable then made
the scheduler back off for seconds, and due runs went unattended meanwhile (the MariaDB
fleet test caught it). These tests make the real server deadlock the store's claim and
check that the claim still succeeds, exactly once.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pymysql
import pytest
import sqlalchemy
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool
from storetest_funcs import NOW, at, make_task
from storetest_support import StoreMaker

from tickwork.exceptions import StoreUnavailableError
from tickwork.stores._sql_conflicts import (
    CONFLICT_ATTEMPTS,
    conflict_pause,
    is_lock_conflict,
    is_timeout,
)
from tickwork.stores.sqlalchemy import SQLAlchemyStore

LEASE = timedelta(seconds=30)


def wrapped(driver_error: Exception) -> sa_exc.DBAPIError:
    """``driver_error`` as SQLAlchemy hands it to the store."""
    return sa_exc.OperationalError("UPDATE ...", {}, driver_error)


@pytest.mark.parametrize(
    "driver_error",
    [
        pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.errors.SerializationFailure("could not serialize access"),
    ],
    ids=["mysql-deadlock", "pg-deadlock", "pg-serialization"],
)
def test_lock_conflicts_are_recognised(driver_error: Exception) -> None:
    assert is_lock_conflict(wrapped(driver_error))
    assert not is_timeout(wrapped(driver_error))


@pytest.mark.parametrize(
    "error",
    [
        wrapped(pymysql.err.OperationalError(2003, "Can't connect to MySQL server")),
        wrapped(psycopg.errors.ConnectionTimeout("connection timeout expired")),
        wrapped(psycopg.errors.UniqueViolation("duplicate key")),
        StoreUnavailableError("not an SQLAlchemy error"),
        None,
    ],
    ids=["mysql-connect", "pg-timeout", "pg-unique", "other", "none"],
)
def test_other_failures_are_not_conflicts(error: BaseException | None) -> None:
    assert not is_lock_conflict(error)


@pytest.mark.parametrize(
    "driver_error",
    [
        # The lock waits the store bounds by io_timeout: the call has used its whole
        # bound, so running it again at once would multiply the bound (see
        # tickwork/stores/_sql_conflicts.py); the scheduler's backoff retries it instead.
        pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"),
        pymysql.err.OperationalError(1969, "max_statement_time exceeded"),
        pymysql.err.OperationalError(2013, "Lost connection to MySQL server (timed out)"),
        psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"),
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        psycopg.errors.ConnectionTimeout("connection timeout expired"),
        sqlite3.OperationalError("database is locked"),
    ],
    ids=[
        "mysql-lock-wait",
        "mariadb-statement",
        "mysql-socket",
        "pg-lock",
        "pg-statement",
        "pg-connect",
        "sqlite-busy",
    ],
)
def test_timeouts_are_recognised_and_are_not_conflicts(driver_error: Exception) -> None:
    if isinstance(driver_error, sqlite3.OperationalError):
        driver_error.sqlite_errorcode = 5  # type: ignore[attr-defined]  # SQLITE_BUSY
    assert is_timeout(wrapped(driver_error))
    assert not is_lock_conflict(wrapped(driver_error))


@pytest.mark.parametrize(
    "error",
    [
        wrapped(pymysql.err.OperationalError(2013, "Lost connection to MySQL server")),
        wrapped(psycopg.errors.QueryCanceled("canceling statement due to user request")),
        wrapped(psycopg.errors.UniqueViolation("duplicate key")),
        StoreUnavailableError("not an SQLAlchemy error"),
        None,
    ],
    ids=["mysql-lost", "pg-cancelled", "pg-unique", "other", "none"],
)
def test_other_failures_are_not_timeouts(error: BaseException | None) -> None:
    assert not is_timeout(error)


def test_pauses_are_short_random_and_growing() -> None:
    for attempt in range(1, CONFLICT_ATTEMPTS):
        pauses = [conflict_pause(attempt) for _ in range(200)]
        assert all(0 <= p <= 0.005 * 2**attempt for p in pauses)
        assert len(set(pauses)) > 100
    assert 0.005 * 2 ** (CONFLICT_ATTEMPTS - 1) <= 0.2  # all attempts well under a second


class Deadlocker:
    """Makes the server deadlock the store's claim, once.

    When the claim is about to mark the rows it locked (``a``), its statement is swapped
    for a locking read of row ``z``, which a second connection (``rival``) holds; the
    rival then asks for ``a``. That is a genuine cycle, and the server must abort one
    side: the store's, because it waited first (PostgreSQL's detector fires in the first
    waiter) and changed fewer rows (MariaDB rolls back the smaller transaction; the
    rival first writes ``FILLER`` rows of its own table).
    """

    FILLER = 200

    def __init__(self, store: SQLAlchemyStore) -> None:
        self.store = store
        self.table = store.tablename
        self.rival_engine = sqlalchemy.create_engine(store.engine.url, poolclass=NullPool)
        self.rival_locked = threading.Event()
        self.rival_done = threading.Event()
        self.rival_error: BaseException | None = None
        self.swapped = 0
        self.updates_seen = 0
        mysql = store.engine.dialect.name in ("mysql", "mariadb")
        self.lock_row = f"SELECT id FROM {self.table} WHERE id = %(tw_row)s FOR UPDATE"
        self.filler_table = f"{self.table}_filler"
        with self.rival_engine.begin() as conn:
            kind = " ENGINE=InnoDB" if mysql else ""
            conn.exec_driver_sql(f"CREATE TABLE {self.filler_table} (n INTEGER){kind}")
        self.row_value: Any = b"z" if mysql else "z"
        self.row_a: Any = b"a" if mysql else "a"

    def _rival(self) -> None:
        try:
            with self.rival_engine.connect() as conn, conn.begin() as transaction:
                conn.exec_driver_sql(self.lock_row, {"tw_row": self.row_value})
                conn.exec_driver_sql(
                    f"INSERT INTO {self.filler_table} (n) VALUES (%(n)s)",
                    [{"n": n} for n in range(self.FILLER)],
                )
                self.rival_locked.set()
                time.sleep(0.3)  # the store's statement waits for z first
                conn.exec_driver_sql(self.lock_row, {"tw_row": self.row_a})
                transaction.rollback()
        except BaseException as exc:  # reported by the test
            self.rival_error = exc
            self.rival_locked.set()
        finally:
            self.rival_done.set()

    def before_execute(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> tuple[str, Any]:
        if statement.lstrip().upper().startswith("UPDATE") and "lease_owner" in statement:
            self.updates_seen += 1
            if self.swapped == 0:
                self.swapped += 1
                threading.Thread(target=self._rival, daemon=True).start()
                assert self.rival_locked.wait(10)
                return self.lock_row, {"tw_row": self.row_value}
        elif self.swapped and statement.lstrip().upper().startswith("SELECT"):
            # The retried claim: let the rival finish, so SKIP LOCKED skips nothing.
            assert self.rival_done.wait(10)
        return statement, parameters

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        event.listen(self.store.engine, "before_cursor_execute", self.before_execute, retval=True)
        try:
            yield
        finally:
            event.remove(self.store.engine, "before_cursor_execute", self.before_execute)
            self.rival_done.wait(10)
            with self.rival_engine.begin() as conn:
                conn.exec_driver_sql(f"DROP TABLE {self.filler_table}")
            self.rival_engine.dispose()


def test_a_claim_the_server_aborts_for_a_deadlock_is_run_again(
    make_sql_server_store: StoreMaker, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_sql_server_store()
    assert isinstance(store, SQLAlchemyStore)
    store.add_tasks([make_task("a", at(-1)), make_task("z", at(3600))])
    deadlocker = Deadlocker(store)
    with caplog.at_level(logging.INFO, logger=store.logger.name), deadlocker.armed():
        claimed = store.acquire_due_tasks(NOW, 10, "one", LEASE)
    assert deadlocker.rival_error is None, deadlocker.rival_error
    assert [task.id for task in claimed] == ["a"]
    # The first attempt really was the deadlock victim, and the second one went through.
    assert deadlocker.updates_seen == 2
    conflicts = [r for r in caplog.records if "lock conflict" in r.getMessage()]
    assert len(conflicts) == 1, [r.getMessage() for r in caplog.records]
    assert "claim due tasks" in conflicts[0].getMessage()
    # The claim holds: nobody else gets "a" until the lease expires.
    assert store.acquire_due_tasks(NOW, 10, "two", LEASE) == []
    assert [t.id for t in store.acquire_due_tasks(NOW + 2 * LEASE, 10, "two", LEASE)] == ["a"]


def test_a_conflict_on_every_attempt_reports_the_store_unavailable(
    make_sql_server_store: StoreMaker,
) -> None:
    store = make_sql_server_store()
    assert isinstance(store, SQLAlchemyStore)
    store.add_task(make_task("a", at(-1)))
    attempts = 0
    mysql = store.engine.dialect.name in ("mysql", "mariadb")

    def always_deadlock(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        nonlocal attempts
        if statement.lstrip().upper().startswith("UPDATE"):
            attempts += 1
            # The driver's own error for a deadlock, as the server reports it.
            if mysql:
                raise pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")
            raise psycopg.errors.DeadlockDetected("deadlock detected")

    event.listen(store.engine, "before_cursor_execute", always_deadlock)
    try:
        with pytest.raises(StoreUnavailableError, match="could not claim due tasks"):
            store.acquire_due_tasks(NOW, 10, "one", LEASE)
    finally:
        event.remove(store.engine, "before_cursor_execute", always_deadlock)
    assert attempts == CONFLICT_ATTEMPTS
    # Every attempt was rolled back: the task is still free to claim.
    assert [t.id for t in store.acquire_due_tasks(NOW, 10, "two", LEASE)] == ["a"]
