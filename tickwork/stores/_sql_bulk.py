"""One-statement forms, on PostgreSQL, of the per-row statements of a pass's write-back.

The write-back of a batch updates each claimed task row and, when the runs end, deletes
each run record: as an ``executemany`` that is one statement per row, which psycopg
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

from collections.abc import Collection
from typing import Any

from sqlalchemy import (
    Boolean,
    Delete,
    Double,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Update,
    and_,
    bindparam,
    delete,
    func,
    or_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from tickwork.stores.base import RunKey

__all__ = ["finish_statement", "finish_values", "release_statement"]


def release_statement(table: Table) -> Update:
    """Write back advanced tasks, each only where its row is not claimed by another owner
    (``b_owner``) and still holds the bytes claimed (``was``; ``any``: not claimed
    through this store object, written as it is), ending the claim; returns the ids
    written. Parameters: ``b_owner`` and the arrays ``a_id``, ``a_next``, ``a_state``,
    ``a_leader``, ``a_any``, ``a_was``, one element per task."""
    rows = (
        func.unnest(
            bindparam("a_id", type_=ARRAY(String)),
            bindparam("a_next", type_=ARRAY(Double)),
            bindparam("a_state", type_=ARRAY(LargeBinary)),
            bindparam("a_leader", type_=ARRAY(SmallInteger)),
            bindparam("a_any", type_=ARRAY(Boolean)),
            bindparam("a_was", type_=ARRAY(LargeBinary)),
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
            bindparam("a_id", type_=ARRAY(String)),
            bindparam("a_time", type_=ARRAY(Double)),
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
        "a_id": [task_id for task_id, _ in runs],
        "a_time": [when.timestamp() for _, when in runs],
    }
