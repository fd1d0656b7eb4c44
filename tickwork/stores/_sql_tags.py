"""The SQL store's tag index: ``<tablename>_tags``, one row per (task id, tag), indexed on
the tag, written in the same transaction as the task rows it describes.

A task's tags live in its saved state too; this table only finds the tasks with a tag
without reading every task. Each task found is checked against its loaded tags, so a row
left behind can never return a task that lacks the tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Column, Connection, Index, MetaData, Table, delete, insert

from tickwork.stores._sql_schema import TaskId
from tickwork.tasks import Task

__all__ = ["clear_tags", "forget_tags", "tags_table", "write_tags"]

#: How many ids one ``IN (...)`` holds (SQLite's bound-parameter limit is far above).
_CHUNK = 500


def tags_table(metadata: MetaData, tablename: str) -> Table:
    """The tag index ``<tablename>_tags``. Tags are kept as ids are (:class:`TaskId`:
    VARBINARY on MySQL), so ``"Billing"`` and ``"billing "`` stay distinct tags under
    any collation."""
    return Table(
        f"{tablename}_tags",
        metadata,
        Column("task_id", TaskId(), primary_key=True),
        Column("tag", TaskId(), primary_key=True),
        Index(f"ix_{tablename}_tags_tag", "tag"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )


def write_tags(conn: Connection, table: Table, tasks: Sequence[Task], replace: bool) -> None:
    """Record the tags of ``tasks``; with ``replace``, drop their old rows first (an
    update: the old tags are not known here)."""
    if replace:
        forget_tags(conn, table, [task.id for task in tasks])
    rows = [{"task_id": task.id, "tag": tag} for task in tasks for tag in task.tags]
    if rows:
        conn.execute(insert(table), rows)


def forget_tags(conn: Connection, table: Table, task_ids: Iterable[str]) -> None:
    """Drop the tag rows of ``task_ids`` (removed or rewritten tasks)."""
    ids = list(task_ids)
    for start in range(0, len(ids), _CHUNK):
        conn.execute(delete(table).where(table.c.task_id.in_(ids[start : start + _CHUNK])))


def clear_tags(conn: Connection, table: Table) -> None:
    """Drop every tag row (all tasks removed)."""
    conn.execute(delete(table))
