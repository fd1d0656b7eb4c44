"""The store contract: where tasks are kept between runs.

The docstrings of :class:`BaseStore` are the specification every store follows and the
shared contract suite (``tests/stores/test_contract.py``) checks.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import ClassVar

from tickwork.exceptions import TaskLookupError
from tickwork.tasks import Task

__all__ = ["BaseStore"]


class BaseStore(ABC):
    """Keeps tasks and answers "what is due?".

    Rules every store follows:

    * Methods may be called from several threads at once; the store protects itself.
    * Tasks handed in are not kept by reference by persistent stores (they serialize);
      tasks handed out carry ``store_alias`` set to this store's alias.
    * A task whose ``fn`` or arguments cannot be serialized is refused by ``add_task``
      / ``update_task`` with :class:`~tickwork.exceptions.SerializationError`, before
      anything is written.
    * A stored task that can no longer be loaded (its function was removed, its data is
      corrupt) is logged and skipped, never deleted: the operator may still fix it.
    * A write either happens completely or not at all, even if the process dies midway.
    * ``now`` is always timezone-aware; a task is due when ``next_run_time <= now``.
      Paused tasks (``next_run_time is None``) are never due.
    """

    #: True when calls do I/O (disk, network). Async schedulers then call the store from
    #: a worker thread so the event loop never waits on it. The memory store sets False.
    blocking: ClassVar[bool] = True

    #: How often (seconds) a running scheduler looks at this store even when nothing in
    #: its own process changed it: other processes may add tasks to a shared store. The
    #: memory store, which no one else can write, sets None.
    poll_interval: ClassVar[float | None] = 1.0

    def __init__(self) -> None:
        self.alias: str | None = None
        self.logger = logging.getLogger(f"tickwork.stores.{type(self).__name__}")

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, alias: str) -> None:
        """Open connections, create the schema or directory. Called by the scheduler when
        the store is added to a running scheduler or the scheduler starts."""
        self.alias = alias

    def shutdown(self) -> None:
        """Release connections and files. Tasks stay stored (also in the memory store,
        which keeps them for a later ``start()``)."""

    # -- writes ---------------------------------------------------------------------------

    def validate_task(self, task: Task) -> None:
        """Raise :class:`~tickwork.exceptions.SerializationError` if this store could not
        keep ``task``. Called by ``add_task`` even before the scheduler starts, so the
        mistake is reported where it is made. Stores with a ``serializer`` attribute try
        it; others accept everything."""
        serializer = getattr(self, "serializer", None)
        if serializer is not None:
            serializer.check(task)

    @abstractmethod
    def add_task(self, task: Task) -> None:
        """Store a new task. Raises :class:`~tickwork.exceptions.ConflictIdError` when a
        task with the same id exists."""

    def add_tasks(self, tasks: Iterable[Task]) -> None:
        """Store several new tasks, all or none where the backend allows (SQL stores use one
        transaction). Raises ``ConflictIdError`` for a duplicate id, within the batch or
        with a stored task."""
        for task in tasks:
            self.add_task(task)

    @abstractmethod
    def update_task(self, task: Task) -> None:
        """Replace the stored task that has ``task.id``. Raises
        :class:`~tickwork.exceptions.TaskLookupError` when there is none."""

    @abstractmethod
    def remove_task(self, task_id: str) -> None:
        """Delete a task. Raises :class:`~tickwork.exceptions.TaskLookupError` when there is
        none."""

    @abstractmethod
    def remove_all_tasks(self) -> None:
        """Delete every task of this store."""

    # -- reads ----------------------------------------------------------------------------

    @abstractmethod
    def lookup_task(self, task_id: str) -> Task | None:
        """Return the task with this id, or ``None``."""

    @abstractmethod
    def get_due_tasks(self, now: datetime, limit: int | None = None) -> list[Task]:
        """Return tasks with ``next_run_time <= now``, earliest first, at most ``limit``."""

    @abstractmethod
    def get_next_run_time(self) -> datetime | None:
        """Return the earliest ``next_run_time`` of all tasks, or ``None`` when every task is
        paused or there are none."""

    @abstractmethod
    def get_all_tasks(self) -> list[Task]:
        """Return every task, ordered by ``next_run_time``, paused tasks last."""

    # -- the scheduler's processing pass --------------------------------------------------

    def acquire_due_tasks(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[Task]:
        """Claim up to ``limit`` due tasks for ``owner`` until ``now + lease``.

        Stores shared by several schedulers override this so that a claimed task is not
        handed to another scheduler until ``release_tasks`` or the lease expires. The
        default (one scheduler per store) just returns the due tasks.
        """
        return self.get_due_tasks(now, limit)

    def release_tasks(self, owner: str, updated: Iterable[Task], removed: Iterable[str]) -> None:
        """Finish a claim: store the advanced ``updated`` tasks and delete the ``removed``
        ids (tasks that will never run again). A task deleted by someone else in the
        meantime stays deleted."""
        for task in updated:
            with contextlib.suppress(TaskLookupError):
                self.update_task(task)
        for task_id in removed:
            with contextlib.suppress(TaskLookupError):
                self.remove_task(task_id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} alias={self.alias!r}>"
