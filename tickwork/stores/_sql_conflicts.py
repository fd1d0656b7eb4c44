"""Recognising the transactions a database aborts to resolve a lock conflict.

Several schedulers claiming and writing back rows of one table now and then make the
database pick a victim: a deadlock (MariaDB / MySQL error 1213, PostgreSQL SQLSTATE
``40P01``), a lock wait that timed out (MySQL 1205) or a serialization failure
(``40001``). The database rolls the victim's transaction back whole, so running it
again is safe, and it usually succeeds at once. Treating such an abort like an outage
(backing off for seconds) would leave due runs unattended meanwhile.
"""

from __future__ import annotations

import random

from sqlalchemy import exc as sa_exc

__all__ = ["CONFLICT_ATTEMPTS", "conflict_pause", "is_lock_conflict"]

#: How many times a write transaction is tried when each attempt ends in a lock conflict;
#: after that the store reports itself unavailable and the scheduler backs off.
CONFLICT_ATTEMPTS = 6

_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock detected
_MYSQL_CODES = frozenset({1205, 1213})  # lock wait timeout, deadlock found


def is_lock_conflict(error: BaseException | None) -> bool:
    """Is ``error`` (an SQLAlchemy error) a transaction the database aborted to resolve
    a lock conflict, which succeeds when simply run again?"""
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    driver_error = error.orig
    state = getattr(driver_error, "sqlstate", None) or getattr(driver_error, "pgcode", None)
    if state in _SQLSTATES:
        return True
    args: tuple[object, ...] = getattr(driver_error, "args", ())
    return bool(args) and args[0] in _MYSQL_CODES


def conflict_pause(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: random, so the transactions that
    collided do not collide again in step; growing, 0-10 ms after the first conflict up
    to 0-160 ms after the fifth."""
    return random.uniform(0.0, 0.005 * 2**attempt)
