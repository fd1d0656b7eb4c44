"""One-statement forms, on PostgreSQL, of the per-row statements of a pass's write-back.

The write-back of a batch updates each claimed task row and inserts a record of each run
starting; when the runs end, their records are deleted. As an ``executemany`` that is
one statement per row, which psycopg
pipelines (one round trip) but the driver still builds, sends and the server still
parses, plans and runs one by one. With a fleet of schedulers on a machine whose cores
they share with the server, that per-row CPU, on both sides, bounded how far the fleet
scaled (``bench/fleet_scale.py``). Here the rows travel as a few arrays, joined with
``unnest``: one statement, one plan, whatever the batch size; the statement's text does
not depend on the number of rows, so it is compiled once and prepared by the driver.

Only PostgreSQL: SQLite and MySQL/MariaDB have no arrays, and keep the ``executemany``
(the conditions are the same, so the outcome is).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Delete,
    Double,
    Insert,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Update,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine, UserDefinedType

from tickwork.stores.base import RunKey

__all__ = [
    "BinaryList",
    "binary_arrays",
    "chunks_for",
    "finish_statement",
    "finish_values",
    "ids_in",
    "record_statement",
    "release_statement",
]


class BinaryList(list[Any]):
    """A list psycopg sends as an array in the binary format. psycopg sends a plain list
    as text, escaping each element: for the serialized tasks (``bytea``) that costs about
    15 µs each, more than the statement saves; in binary, under 1 µs. Registered for this
    class only, so no other list anywhere changes how it is sent."""

    __slots__ = ()


def binary_arrays(conn: Connection) -> None:
    """Make psycopg send :class:`BinaryList` in binary on ``conn`` (a dictionary look-up
    once it does). Per connection: a psycopg connection copies the global adapters when
    it is made, so registering them globally later would miss the open ones."""
    if conn.dialect.driver != "psycopg":
        return  # (psycopg2 sends lists as arrays its own way)
    adapters = getattr(conn.connection.driver_connection, "adapters", None)
    if adapters is None:  # pragma: no cover
        return
    from psycopg.adapt import PyFormat
    from psycopg.types.array import ListBinaryDumper

    if adapters.get_dumper(BinaryList, PyFormat.AUTO) is not ListBinaryDumper:
        adapters.register_dumper(BinaryList, ListBinaryDumper)


class _ArrayParameter(UserDefinedType[list[Any]]):
    """A bound array, passed to the driver as a :class:`BinaryList` (SQLAlchemy's own
    ``ARRAY`` type would copy it into a plain list); the statement casts it."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "BYTEA[]"  # (never rendered: the parameter is always cast)

    def bind_processor(self, dialect: Dialect) -> Any:
        return lambda value: value if isinstance(value, BinaryList) else BinaryList(value)


def _array(name: str, item_type: TypeEngine[Any]) -> ColumnElement[Any]:
    return cast(bindparam(name, type_=_ArrayParameter()), ARRAY(item_type))


def ids_in(column: ColumnElement[Any], ids: Sequence[str], dialect: Dialect) -> Any:
    """``column IN ids``; on PostgreSQL ``column = ANY(array)``: a short statement text
    whatever the number of ids, which the driver parses once and prepares, where ``IN``
    has one placeholder per id (several kB of text per batch, parsed at every call)."""
    if dialect.name != "postgresql":
        return column.in_(ids)
    bound = bindparam(None, BinaryList(ids), type_=_ArrayParameter())
    return column == any_(cast(bound, ARRAY(String())))


def chunks_for(ids: Sequence[str], dialect: Dialect, size: int) -> Iterator[Sequence[str]]:
    """``ids`` in chunks of ``size`` for :func:`ids_in` (one chunk on PostgreSQL: an array
    has no limit on its length)."""
    if dialect.name == "postgresql":
        if ids:
            yield ids
        return
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def release_statement(table: Table) -> Update:
    """Write back advanced tasks, each only where its row is not claimed by another owner
    (``b_owner``) and still holds the bytes claimed (``was``; ``any``: not claimed
    through this store object, written as it is), ending the claim; returns the ids
    written. Parameters: ``b_owner`` and the arrays ``a_id``, ``a_next``, ``a_state``,
    ``a_leader``, ``a_any``, ``a_was``, one element per task."""
    rows = (
        func.unnest(
            _array("a_id", String()),
            _array("a_next", Double()),
            _array("a_state", LargeBinary()),
            _array("a_leader", SmallInteger()),
            _array("a_any", Boolean()),
            _array("a_was", LargeBinary()),
        )
        .table_valued("id", "next", "state", "leader", "any", "was")
        .render_derived(name="b_rows")
    )
    owner = table.c.lease_owner
    return (
        update(table)
        .where(
            table.c.id == rows.c.id,
            or_(owner.is_(None), owner == bindparam("b_owner")),
            or_(rows.c.any, table.c.state == rows.c.was),
        )
        .values(
            next_run_time=rows.c.next,
            state=rows.c.state,
            leader_only=rows.c.leader,
            lease_owner=None,
            lease_expires=None,
        )
        .returning(table.c.id)
    )


def finish_statement(table: Table) -> Delete:
    """Delete the run records of ``b_owner`` whose keys are in the arrays ``a_id`` and
    ``a_time`` (epoch seconds), one element per run."""
    keys = (
        func.unnest(
            _array("a_id", String()),
            _array("a_time", Double()),
        )
        .table_valued("id", "time")
        .render_derived(name="b_keys")
    )
    return delete(table).where(
        and_(
            table.c.task_id == keys.c.id,
            table.c.run_time == keys.c.time,
            table.c.owner == bindparam("b_owner"),
        )
    )


def finish_values(owner: str, runs: Collection[RunKey]) -> dict[str, Any]:
    """The parameters of :func:`finish_statement` for ``owner``'s ``runs``."""
    return {
        "b_owner": owner,
        "a_id": BinaryList(task_id for task_id, _ in runs),
        "a_time": BinaryList(when.timestamp() for _, when in runs),
    }


def record_statement(table: Table) -> Insert:
    """Insert the records of runs starting: the arrays ``a_id``, ``a_time`` (epoch
    seconds) and ``a_state`` (the task as handed over), one element per run, all for
    ``b_owner``, first attempts, leased until ``b_expires``."""
    runs = (
        func.unnest(
            _array("a_id", String()),
            _array("a_time", Double()),
            _array("a_state", LargeBinary()),
        )
        .table_valued("id", "time", "state")
        .render_derived(name="b_runs")
    )
    columns = ["task_id", "run_time", "owner", "lease_expires", "state", "attempt", "cancel"]
    rows = select(
        runs.c.id,
        runs.c.time,
        bindparam("b_owner", type_=String()),
        bindparam("b_expires", type_=Double()),
        runs.c.state,
        literal(1, Integer()),
        literal(0, SmallInteger()),
    )
    return insert(table).from_select(columns, rows)
