"""The ``<tablename>_runs`` table of :class:`~tickwork.stores.sqlalchemy.SQLAlchemyStore`:
one row per run handed to an executor and not yet finished.

Columns: ``task_id`` and ``run_time`` (epoch seconds) form the primary key, so a slot
can be recorded once only; ``owner`` is the scheduler running it, ``lease_expires``
(indexed, epoch seconds) when the record is up for take-over unless renewed, and
``state`` the serialized task as it was handed over, so a take-over can run it again
even if the task was changed or deleted since.

The functions here run inside a transaction the store opened.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Double,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    TypeDecorator,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import mysql

from tickwork.exceptions import SerializationError
from tickwork.serializers import BaseSerializer
from tickwork.stores.base import InProgressRun, RunKey
from tickwork.tasks import Task

__all__ = ["RunTable"]

_MYSQL = ("mysql", "mariadb")
_CHUNK = 500


class RunTable:
    """The runs table and the statements on it."""

    def __init__(
        self,
        metadata: MetaData,
        tablename: str,
        id_type: TypeDecorator[str],
        owner_length: int,
        serializer: BaseSerializer,
        logger: logging.Logger,
    ) -> None:
        self.table = Table(
            f"{tablename}_runs",
            metadata,
            Column("task_id", id_type, primary_key=True),
            Column("run_time", Double(), primary_key=True, autoincrement=False),
            Column("owner", String(owner_length), nullable=False),
            Column("lease_expires", Double(), nullable=False),
            Column("state", LargeBinary().with_variant(mysql.LONGBLOB(), *_MYSQL), nullable=False),
            Index(f"ix_{tablename}_runs_lease_expires", "lease_expires"),
            mysql_engine="InnoDB",
            mysql_charset="utf8mb4",
        )
        self._serializer = serializer
        self._logger = logger

    def record(
        self,
        conn: Connection,
        owner: str,
        runs: Sequence[tuple[Task, datetime]],
        blobs: dict[str, bytes],
        expires: datetime,
    ) -> set[str]:
        """Insert records for ``runs``; return the ids of tasks with a run already
        recorded for one of the same times (nothing is recorded for those tasks)."""
        if not runs:
            return set()
        table = self.table
        wanted = {(task.id, when.timestamp()) for task, when in runs}
        taken: set[str] = set()
        for chunk in _chunks(sorted({task.id for task, _ in runs})):
            query = select(table.c.task_id, table.c.run_time).where(table.c.task_id.in_(chunk))
            taken.update(
                task_id for task_id, when in conn.execute(query) if (task_id, when) in wanted
            )
        rows = []
        for task, when in runs:
            if task.id in taken:
                continue
            blob = blobs.get(task.id)
            rows.append(
                {
                    "task_id": task.id,
                    "run_time": when.timestamp(),
                    "owner": owner,
                    "lease_expires": expires.timestamp(),
                    "state": blob if blob is not None else self._serializer.serialize(task),
                }
            )
        if rows:
            conn.execute(insert(table), rows)
        return taken

    def count(self, conn: Connection, task_ids: Collection[str]) -> dict[str, int]:
        """Records per task id (ids without records are left out)."""
        table = self.table
        counts: dict[str, int] = {}
        for chunk in _chunks(sorted(set(task_ids))):
            query = (
                select(table.c.task_id, func.count())
                .where(table.c.task_id.in_(chunk))
                .group_by(table.c.task_id)
            )
            counts.update({task_id: int(n) for task_id, n in conn.execute(query)})
        return counts

    def renew(
        self, conn: Connection, owner: str, runs: Collection[RunKey], expires: datetime
    ) -> int:
        """Extend ``owner``'s records of ``runs``; return how many matched."""
        table = self.table
        statement = (
            update(table)
            .where(self._key_matches(), table.c.owner == owner)
            .values(lease_expires=expires.timestamp())
        )
        renewed = 0
        for task_id, when in runs:  # one by one: executemany row counts are unreliable
            result = conn.execute(statement, {"k_id": task_id, "k_time": when.timestamp()})
            renewed += max(result.rowcount, 0)
        return renewed

    def finish(self, conn: Connection, owner: str, runs: Collection[RunKey]) -> None:
        """Delete ``owner``'s records of ``runs``."""
        if not runs:
            return
        table = self.table
        conn.execute(
            delete(table).where(self._key_matches(), table.c.owner == bindparam("k_owner")),
            [
                {"k_id": task_id, "k_time": when.timestamp(), "k_owner": owner}
                for task_id, when in runs
            ],
        )

    def take_over(
        self,
        conn: Connection,
        now: datetime,
        limit: int,
        owner: str,
        expires: datetime,
        row_locks: bool,
        alias: str | None,
    ) -> list[InProgressRun]:
        """Make up to ``limit`` expired records ``owner``'s; return those that load."""
        table = self.table
        query = (
            select(table.c.task_id, table.c.run_time, table.c.owner, table.c.state)
            .where(table.c.lease_expires < now.timestamp())
            .order_by(table.c.lease_expires)
            .limit(limit)
        )
        if row_locks:
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        if not rows:
            return []
        conn.execute(
            update(table)
            .where(self._key_matches())
            .values(owner=owner, lease_expires=expires.timestamp()),
            [{"k_id": task_id, "k_time": when} for task_id, when, _, _ in rows],
        )
        taken: list[InProgressRun] = []
        for task_id, when, previous, state in rows:
            task = self._load(task_id, bytes(state), alias)
            if task is not None:
                taken.append(InProgressRun(task, _to_datetime(when, task), previous))
        return taken

    def _load(self, task_id: str, state: bytes, alias: str | None) -> Task | None:
        try:
            task = self._serializer.deserialize(state)
        except SerializationError as exc:
            # Left to expire again: a scheduler that can load it may take it over.
            self._logger.error("cannot take over a run of task %r: %s", task_id, exc)
            return None
        task.store_alias = alias
        return task

    def _key_matches(self) -> Any:
        table = self.table
        return and_(table.c.task_id == bindparam("k_id"), table.c.run_time == bindparam("k_time"))


def _to_datetime(timestamp: float, task: Task) -> datetime:
    """The run time in the zone of the task's trigger, when it has one."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    zone = getattr(task.trigger, "timezone", None)
    return moment.astimezone(zone) if zone is not None else moment


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def blobs_by_id(rows: Iterable[dict[str, Any]]) -> dict[str, bytes]:
    """``{task id: serialized task}`` of the task rows a release writes, so run records
    reuse the bytes instead of serializing each task twice."""
    return {row["id"]: row["state"] for row in rows}
