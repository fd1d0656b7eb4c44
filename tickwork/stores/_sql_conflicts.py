"""Recognising the transactions a database aborts to resolve a lock conflict, and the
statements it stops because they outlived the store's ``io_timeout``.

Several schedulers claiming and writing back rows of one table now and then make the
database pick a victim: a deadlock (MariaDB / MySQL error 1213, PostgreSQL SQLSTATE
``40P01``) or a serialization failure (``40001``). The database detects those at once (or,
PostgreSQL, after ``deadlock_timeout``, 1 s by default) and rolls the victim's transaction
back whole, so running it again is safe, and it usually succeeds at once. Treating such
an abort like an outage (backing off for seconds) would leave due runs unattended
meanwhile.

A lock *wait timeout* is different, and is not retried here. With the bounds the store
sets (see :mod:`._sql_schema`), a lock wait times out after ``io_timeout`` seconds
(MySQL 1205, PostgreSQL ``55P03``): the call has already used its whole bound, and the
lock is held by something that is not a scheduler's short claim (claims skip locked rows
with ``SKIP LOCKED``; write-backs wait for a claim's few milliseconds at most): a table
lock, a migration, a transaction left open. Running the statement again at once would
multiply the bound by the number of attempts, which is the hang ``io_timeout`` exists to
prevent. It is reported as :class:`~tickwork.exceptions.StoreUnavailableError`, which is
not fatal for a scheduler or its fleet: the scheduler retries the store with its usual
backoff (0.5 s, doubling), a failed write-back is written before anything else is
claimed, and the other schedulers sharing the table carry on with the rows they can
reach.
"""

from __future__ import annotations

import random

from sqlalchemy import exc as sa_exc

__all__ = ["CONFLICT_ATTEMPTS", "conflict_pause", "is_lock_conflict", "is_timeout"]


#: A generator of its own, not the ``random`` module's shared one, which belongs to the
#: application (seeded programs would see their sequence change).
_pauses = random.Random()

#: How many times a write transaction is tried when each attempt ends in a lock conflict;
#: after that the store reports itself unavailable and the scheduler backs off.
CONFLICT_ATTEMPTS = 6

_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock detected
_MYSQL_CODES = frozenset({1213})  # deadlock found

# lock_not_available: PostgreSQL's lock_timeout fired.
_TIMEOUT_SQLSTATES = frozenset({"55P03"})
# query_canceled: statement_timeout fired, or someone cancelled the query (the message
# tells them apart).
_CANCELED_SQLSTATE = "57014"
# Lock wait timeout (InnoDB rows, or metadata: lock_wait_timeout), MariaDB's
# max_statement_time exceeded, MySQL's max_execution_time exceeded.
_MYSQL_TIMEOUT_CODES = frozenset({1205, 1969, 3024})
# "Can't connect" and "Lost connection": timeouts when the driver's socket timed out.
_MYSQL_SOCKET_CODES = frozenset({2003, 2013})
_SQLITE_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED: busy timeout ran out


def is_lock_conflict(error: BaseException | None) -> bool:
    """Is ``error`` (an SQLAlchemy error) a transaction the database aborted to resolve
    a lock conflict, which succeeds when simply run again?"""
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    driver_error = error.orig
    if _sqlstate(driver_error) in _SQLSTATES:
        return True
    return _mysql_code(driver_error) in _MYSQL_CODES


def is_timeout(error: BaseException | None) -> bool:
    """Did ``error`` (an SQLAlchemy error) end a call because a bound the store set ran
    out: a lock or statement timeout, a busy timeout, a driver's socket or connect
    timeout, or the pool's checkout timeout?"""
    if isinstance(error, sa_exc.TimeoutError):
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    driver_error = error.orig
    message = str(driver_error).lower()
    state = _sqlstate(driver_error)
    if state in _TIMEOUT_SQLSTATES or (state == _CANCELED_SQLSTATE and "timeout" in message):
        return True
    code = _mysql_code(driver_error)
    if code in _MYSQL_TIMEOUT_CODES or (code in _MYSQL_SOCKET_CODES and "timed out" in message):
        return True
    if getattr(driver_error, "sqlite_errorcode", None) in _SQLITE_BUSY_CODES:
        return True
    # psycopg's connect_timeout (no SQLSTATE: the server never answered).
    return any(cls.__name__ == "ConnectionTimeout" for cls in type(driver_error).__mro__)


def _sqlstate(driver_error: BaseException | None) -> str | None:
    """The SQLSTATE of a psycopg (``sqlstate``) or psycopg2 (``pgcode``) error."""
    state = getattr(driver_error, "sqlstate", None) or getattr(driver_error, "pgcode", None)
    return state if isinstance(state, str) else None


def _mysql_code(driver_error: BaseException | None) -> int | None:
    """The MySQL error number (the first argument of a PyMySQL / mysqlclient error)."""
    args: tuple[object, ...] = getattr(driver_error, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def conflict_pause(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: random, so the transactions that
    collided do not collide again in step; growing, 0-10 ms after the first conflict up
    to 0-160 ms after the fifth."""
    return _pauses.uniform(0.0, 0.005 * 2**attempt)
