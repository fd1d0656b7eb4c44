"""One page of a store's tasks, for listings that must stay quick with many tasks (the
admin app's task list at 100,000 tasks): the tasks whose id contains a text, paused or
not, from an offset, with how many match in all.

:meth:`BaseStore.get_task_page <tickwork.stores.base.BaseStore.get_task_page>` filters
:meth:`get_all_tasks` (every task loaded); the SQL store overrides it with one count and
one ``LIMIT``/``OFFSET`` query, so only the page's tasks are deserialized (loading
every task of 100,000 took about 3 s on SQLite, measured under load)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, case, cast, func, select
from sqlalchemy.dialects import mysql

from tickwork.exceptions import ConfigurationError

if TYPE_CHECKING:
    from tickwork.tasks import Task

__all__ = ["check_page", "filter_page", "sql_task_page"]


def check_page(search: str, paused: bool | None, offset: int, limit: int) -> None:
    """Refuse values that make no page (named in the error)."""
    if not isinstance(search, str):
        raise ConfigurationError(f"search must be a string, got {search!r}")
    if paused not in (None, True, False):
        raise ConfigurationError(f"paused must be None, True or False, got {paused!r}")
    for name, value, low in (("offset", offset, 0), ("limit", limit, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigurationError(f"{name} must be an integer >= {low}, got {value!r}")


def _matches(task: Task, needle: str, paused: bool | None) -> bool:
    if needle and needle not in task.id.casefold():
        return False
    return paused is None or (task.next_run_time is None) == paused


def filter_page(
    tasks: Sequence[Task], search: str, paused: bool | None, offset: int, limit: int
) -> tuple[list[Task], int]:
    """The page of ``tasks`` (already in listing order), and how many match."""
    needle = search.casefold()
    matching = [task for task in tasks if _matches(task, needle, paused)]
    return matching[offset : offset + limit], len(matching)


def sql_task_page(
    table: Table,
    read_rows: Callable[[str, Any], list[Any]],
    load: Callable[[list[Any]], list[Task]],
    search: str,
    paused: bool | None,
    offset: int,
    limit: int,
    binary_ids: bool = False,
) -> tuple[list[Task], int]:
    """The page from the task table: one count, one query of the page's rows, in
    :meth:`get_all_tasks`'s order (by next run time on its index, paused last, then id)."""
    conditions = []
    if search:
        escaped = search.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        column: Any = table.c.id
        if binary_ids:
            # MySQL keeps ids as bytes (exact comparison), and LOWER() leaves bytes as
            # they are: read them as text to compare without case.
            column = cast(column, mysql.CHAR(charset="utf8mb4"))
        conditions.append(func.lower(column).like(f"%{escaped}%", escape="\\"))
    if paused is not None:
        conditions.append(
            table.c.next_run_time.is_(None) if paused else table.c.next_run_time.is_not(None)
        )
    counted = read_rows("count tasks", select(func.count()).select_from(table).where(*conditions))
    paused_last = case((table.c.next_run_time.is_(None), 1), else_=0)
    query = (
        select(table.c.id, table.c.state)
        .where(*conditions)
        .order_by(paused_last, table.c.next_run_time, table.c.id)
        .offset(offset)
        .limit(limit)
    )
    return load(read_rows("list a page of tasks", query)), int(counted[0][0]) if counted else 0
