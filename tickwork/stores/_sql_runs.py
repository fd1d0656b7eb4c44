"""The ``<tablename>_runs`` table of :class:`~tickwork.stores.sqlalchemy.SQLAlchemyStore`:
one row per run handed to an executor and not yet finished.

Columns: ``task_id`` and ``run_time`` (epoch seconds) form the primary key, so a slot
can be recorded once only; ``owner`` is the scheduler running it, ``lease_expires``
(indexed, epoch seconds) when the record is up for take-over unless renewed, and
``state`` the serialized task as it was handed over, so a take-over can run it again
even if the task was changed or deleted since. Schema version 3 added ``attempt`` (the
attempt in progress or to make, 1 for the first) and ``cancel`` (1 once someone asked
for the run to be cancelled; its owner finds it at its next renewal).

A **pending retry** is a row with ``owner = ''``: nobody runs it; ``lease_expires`` is
when it is due, when it is taken over like an expired record (exactly once: the same
locking ``SELECT``). Pending retries are not runs in progress: ``count`` leaves them
out.

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
    Delete,
    Double,
    Index,
    Insert,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    TypeDecorator,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import mysql

from tickwork.exceptions import SerializationError
from tickwork.serializers import BaseSerializer
from tickwork.stores._sql_bulk import (
    BinaryList,
    chunks_for,
    finish_statement,
    finish_values,
    ids_in,
    record_statement,
)
from tickwork.stores.base import InProgressRun, PendingRetry, RunKey
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
            # (Version 3. Server defaults: rows of version 2, and ADD COLUMN, need them.)
            Column("attempt", Integer(), nullable=False, server_default=text("1")),
            Column("cancel", SmallInteger(), nullable=False, server_default=text("0")),
            Index(f"ix_{tablename}_runs_lease_expires", "lease_expires"),
            mysql_engine="InnoDB",
            mysql_charset="utf8mb4",
        )
        self._serializer = serializer
        self._logger = logger
        self._finish_bulk: Delete | None = None
        self._record_bulk_statement: Insert | None = None

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
        dialect = conn.dialect
        for chunk in chunks_for(sorted({task.id for task, _ in runs}), dialect, _CHUNK):
            query = select(table.c.task_id, table.c.run_time).where(
                ids_in(table.c.task_id, chunk, dialect)
            )
            taken.update(
                task_id for task_id, when in conn.execute(query) if (task_id, when) in wanted
            )
        if conn.dialect.name == "postgresql":  # one statement (see _sql_bulk)
            self._record_bulk(conn, owner, runs, blobs, expires, taken)
            return taken
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
                    "attempt": 1,
                    "cancel": 0,
                }
            )
        if rows:
            conn.execute(insert(table), rows)
        return taken

    def _record_bulk(
        self,
        conn: Connection,
        owner: str,
        runs: Sequence[tuple[Task, datetime]],
        blobs: dict[str, bytes],
        expires: datetime,
        taken: set[str],
    ) -> None:
        ids, times, states = BinaryList(), BinaryList(), BinaryList()
        for task, when in runs:
            if task.id in taken:
                continue
            blob = blobs.get(task.id)
            ids.append(task.id)
            times.append(when.timestamp())
            states.append(blob if blob is not None else self._serializer.serialize(task))
        if not ids:
            return
        if self._record_bulk_statement is None:
            self._record_bulk_statement = record_statement(self.table)
        conn.execute(
            self._record_bulk_statement,
            {
                "b_owner": owner,
                "b_expires": expires.timestamp(),
                "a_id": ids,
                "a_time": times,
                "a_state": states,
            },
        )

    def count(self, conn: Connection, task_ids: Collection[str]) -> dict[str, int]:
        """Records of runs in progress per task id (ids without records are left out;
        pending retries are not runs in progress)."""
        table = self.table
        counts: dict[str, int] = {}
        dialect = conn.dialect
        for chunk in chunks_for(sorted(set(task_ids)), dialect, _CHUNK):
            query = (
                select(table.c.task_id, func.count())
                .where(ids_in(table.c.task_id, chunk, dialect), table.c.owner != "")
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
        if conn.dialect.name == "postgresql":  # one statement, not one per run (see _sql_bulk)
            if self._finish_bulk is None:
                self._finish_bulk = finish_statement(table)
            conn.execute(self._finish_bulk, finish_values(owner, runs))
            return
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
        fence: Any = None,
    ) -> list[InProgressRun]:
        """Make up to ``limit`` expired records and pending retries due at ``now``
        ``owner``'s; return those that load (see :meth:`BaseStore.take_over_runs`).

        ``fence`` is a further condition on the records (the store's: leader-only tasks'
        records only for the running leader), checked in the same statement."""
        table = self.table
        moment = now.timestamp()
        query = (
            select(
                table.c.task_id,
                table.c.run_time,
                table.c.owner,
                table.c.lease_expires,
                table.c.attempt,
                table.c.state,
            )
            # One index range: expired records (< now) and retries due (<= now).
            .where(
                table.c.lease_expires <= moment,
                or_(table.c.lease_expires < moment, table.c.owner == ""),
                true() if fence is None else fence,
            )
            .order_by(table.c.lease_expires)
            .limit(limit)
        )
        if row_locks:
            # Rows another scheduler is taking over right now are skipped, not waited
            # for: each record and retry goes to one scheduler only.
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        if not rows:
            return []
        taken: list[InProgressRun] = []
        changes: list[dict[str, Any]] = []
        for task_id, when, previous, lease, attempt, state in rows:
            task = self._load(task_id, bytes(state), alias)
            change = {"k_id": task_id, "k_time": when, "b_owner": owner, "b_attempt": attempt}
            change["b_expires"] = expires.timestamp()
            if task is None:
                # Taken over, but neither run nor counted as a new attempt; a retry stays
                # a retry (nobody runs it), due again at ``expires``.
                change["b_owner"] = previous if previous == "" else owner
            elif previous == "":
                taken.append(
                    InProgressRun(
                        task,
                        _to_datetime(when, task),
                        previous,
                        max(attempt, 1),
                        _to_datetime(lease, task),
                    )
                )
            else:
                # The abandoned attempt counts: the record holds the one made now, so a
                # second abandonment counts on from it.
                change["b_attempt"] = max(attempt, 1) + 1
                taken.append(
                    InProgressRun(task, _to_datetime(when, task), previous, change["b_attempt"])
                )
            changes.append(change)
        conn.execute(
            update(table)
            .where(self._key_matches())
            .values(
                owner=bindparam("b_owner"),
                lease_expires=bindparam("b_expires"),
                attempt=bindparam("b_attempt"),
            ),
            changes,
        )
        return taken

    def retry(self, conn: Connection, owner: str, retries: Collection[PendingRetry]) -> None:
        """Turn ``owner``'s records of ``retries`` into pending retries (see
        :meth:`BaseStore.retry_runs`); a run without a record gets one."""
        table = self.table
        convert = (
            update(table)
            .where(self._key_matches(), table.c.owner == owner, table.c.cancel == 0)
            .values(owner="", attempt=bindparam("b_attempt"), lease_expires=bindparam("b_due"))
        )
        for retry in retries:  # one by one: executemany row counts are unreliable
            key = {"k_id": retry.task.id, "k_time": retry.run_time.timestamp()}
            values = {"b_attempt": retry.attempt, "b_due": retry.due.timestamp()}
            if conn.execute(convert, {**key, **values}).rowcount > 0:
                continue
            found = conn.execute(
                select(table.c.owner, table.c.cancel).where(self._key_matches()), key
            ).first()
            if found is None:
                # No record (a run this store never recorded, or one finished meanwhile):
                # the retry is kept all the same, so it is never lost.
                conn.execute(
                    insert(table),
                    {
                        "task_id": retry.task.id,
                        "run_time": key["k_time"],
                        "owner": "",
                        "lease_expires": values["b_due"],
                        "state": self._serializer.serialize(retry.task),
                        "attempt": retry.attempt,
                        "cancel": 0,
                    },
                )
            elif found[0] == owner:
                # Its cancellation was asked for while it ran: the run is not tried again.
                conn.execute(delete(table).where(self._key_matches()), key)
                self._logger.warning(
                    "run of task %r scheduled at %s was to be retried (attempt %d), but "
                    "its cancellation was requested: not retried",
                    retry.task.id,
                    retry.run_time.isoformat(),
                    retry.attempt,
                )
            # else: another scheduler's record now (taken over), or already a pending
            # retry: left alone.

    def cancel(self, conn: Connection, task_id: str, run_time: datetime | None) -> int:
        """Delete the pending retries of ``task_id`` (its run at ``run_time`` only, when
        given) and mark its records in progress; return how many were deleted plus how
        many were newly marked."""
        table = self.table
        chosen = [table.c.task_id == task_id]
        if run_time is not None:
            chosen.append(table.c.run_time == run_time.timestamp())
        deleted = conn.execute(delete(table).where(*chosen, table.c.owner == "")).rowcount
        marked = conn.execute(
            update(table).where(*chosen, table.c.owner != "", table.c.cancel == 0).values(cancel=1)
        ).rowcount
        return max(deleted, 0) + max(marked, 0)

    def cancel_requests(self, conn: Connection, owner: str) -> list[RunKey]:
        """``owner``'s records marked for cancellation."""
        table = self.table
        query = select(table.c.task_id, table.c.run_time).where(
            table.c.owner == owner, table.c.cancel != 0
        )
        return [
            (task_id, datetime.fromtimestamp(when, UTC)) for task_id, when in conn.execute(query)
        ]

    def next_retry(self, conn: Connection) -> datetime | None:
        """When the earliest pending retry is due."""
        table = self.table
        query = select(func.min(table.c.lease_expires)).where(table.c.owner == "")
        found = conn.execute(query).scalar_one_or_none()
        return datetime.fromtimestamp(found, UTC) if found is not None else None

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
