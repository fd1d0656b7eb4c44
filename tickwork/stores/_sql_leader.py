"""The ``<tablename>_leader`` table of :class:`~tickwork.stores.sqlalchemy.SQLAlchemyStore`:
the term of the leader of the schedulers sharing the store (schema version 4).

One row, ``name = 'leader'``: ``owner`` (the scheduler's identity), ``expires`` (epoch
seconds **by the database's clock**) and ``generation`` (grows by one with every new
term: the fencing token). A term is taken when the row's has expired, renewed by its
owner while it runs (by the store instance that holds it: the generation must match),
and never renewed once expired.

Why the database's clock: the schedulers of a fleet run on hosts whose clocks differ;
one clock for every term means a term ends at one instant for everyone. A leader
counts its own term from *before* it asked (see :mod:`tickwork.schedulers._leadership`),
so it stops acting as leader before the database lets anyone else start.

Leader-only tasks carry ``leader_only = 1`` in the task table. :func:`LeaderTable.leads`
is the condition "this owner holds this generation's term and it has not expired", which
the store's claims and next-run-time query include in their own statement.

The functions here run inside a transaction the store opened.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Double,
    Engine,
    MetaData,
    String,
    Table,
    exists,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect

__all__ = ["LeaderTable", "database_now"]

_ROW = "leader"


def database_now(dialect: Dialect) -> Any:
    """The database's current time in epoch seconds, as an SQL expression (the clock
    every term is measured by)."""
    name = dialect.name
    if name == "postgresql":
        # clock_timestamp(), not now(): now() is fixed at the transaction's start.
        return literal_column("EXTRACT(EPOCH FROM clock_timestamp())")
    if name in ("mysql", "mariadb"):
        return literal_column("UNIX_TIMESTAMP(NOW(6))")
    if name == "sqlite":
        # (One host: the OS clock, in julian days, to about a millisecond.)
        return literal_column("((julianday('now') - 2440587.5) * 86400.0)")
    raise NotImplementedError(f"no database clock known for the {name!r} dialect")


class LeaderTable:
    """The leader's term, in ``<tablename>_leader`` (see the module docstring)."""

    def __init__(self, metadata: MetaData, tablename: str, owner_length: int) -> None:
        self.table = Table(
            f"{tablename}_leader",
            metadata,
            Column("name", String(64), primary_key=True),
            Column("owner", String(owner_length), nullable=True),
            Column("expires", Double(), nullable=True),
            Column("generation", BigInteger(), nullable=False),
            mysql_engine="InnoDB",
            mysql_charset="utf8mb4",
        )

    def ensure_row(self, engine: Engine) -> None:
        """Insert the empty row (no term yet, generation 0) unless it exists."""
        table = self.table
        with engine.connect() as conn:
            if conn.execute(select(table.c.name).where(table.c.name == _ROW)).first():
                return
        # Another scheduler starting at the same time may insert it first: as good.
        with contextlib.suppress(sa_exc.IntegrityError), engine.begin() as conn:
            conn.execute(insert(table).values(name=_ROW, generation=0))

    def elect(
        self, conn: Connection, owner: str, lease: float, row_locks: bool, held: int | None
    ) -> int | None:
        """Take or renew ``owner``'s term (see :meth:`BaseStore.elect`). ``held`` is the
        generation of the term the calling store instance holds: only that term is
        renewed, never one another instance under the same owner name has won since."""
        table = self.table
        now_sql = database_now(conn.dialect)
        query = select(table.c.owner, table.c.expires, table.c.generation, now_sql).where(
            table.c.name == _ROW
        )
        if row_locks:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            return None  # (start() inserts it; a table emptied by hand waits for the next start)
        holder, expires, generation, now = row[0], row[1], int(row[2]), float(row[3])
        running = expires is not None and expires > now
        if running and (holder != owner or held != generation):
            return None
        if not running:
            generation += 1  # a new term: an expired one is never renewed
        conn.execute(
            update(table)
            .where(table.c.name == _ROW)
            .values(owner=owner, expires=now + lease, generation=generation)
        )
        return generation

    def current(self, conn: Connection) -> tuple[str, int, float] | None:
        """The running term as (owner, generation, seconds left by the database's
        clock), or None when none runs."""
        table = self.table
        row = conn.execute(
            select(
                table.c.owner, table.c.expires, table.c.generation, database_now(conn.dialect)
            ).where(table.c.name == _ROW)
        ).first()
        if row is None or row[0] is None or row[1] is None or float(row[1]) <= float(row[3]):
            return None
        return str(row[0]), int(row[2]), float(row[1]) - float(row[3])

    def resign(self, conn: Connection, owner: str) -> None:
        """End ``owner``'s term now."""
        table = self.table
        conn.execute(
            update(table).where(table.c.name == _ROW, table.c.owner == owner).values(expires=None)
        )

    def leads(self, dialect: Dialect, owner: str, generation: int) -> Any:
        """The SQL condition: ``owner`` holds the term of ``generation`` and it has not
        expired by the database's clock."""
        table = self.table
        return exists(
            select(table.c.name).where(
                table.c.name == _ROW,
                table.c.owner == owner,
                table.c.generation == generation,
                table.c.expires > database_now(dialect),
            )
        )
