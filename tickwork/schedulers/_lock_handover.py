"""Taking a store over from another process with ``lock_path``, without running twice
what that process already ran.

With ``lock_path``, each process typically keeps the same tasks in a memory store of
its own, and only the lock holder runs them. A standby's copies are never advanced, so
on taking the lock it would find every slot since its start overdue and, coalesced, run
the latest one, which the previous holder may just have run (a ``gunicorn
--max-requests`` recycle or a crash then runs a slot twice). So the holder notes after
each pass how far it processed the store (:meth:`FileLockProtected.record_progress`),
and a new holder first advances its tasks past that point without running them.

Processes sharing a lock path must therefore add the same tasks (same ids); slots due
after the last recorded pass follow the usual rules (run within
``mistrigger_grace_time``, else reported missed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tickwork.locks import FileLockProtected
from tickwork.stores.base import BaseStore
from tickwork.tasks import Task

if TYPE_CHECKING:
    from tickwork.schedulers.base import BaseScheduler

__all__ = ["LockHandover"]

#: Catching up walks trigger times in steps of this many (see MAX_CATCH_UP in _pass).
_STEP = 1000


class LockHandover:
    """Per scheduler: notices when it takes a store's lock, and records its progress."""

    def __init__(self, scheduler: BaseScheduler) -> None:
        self._scheduler = scheduler
        self._holding: dict[str, FileLockProtected] = {}
        self._warned = False

    def before_batch(self, store: BaseStore, alias: str) -> None:
        """On the first batch under a newly taken lock, skip what the last holder ran."""
        guard = self._scheduler._guards.get(alias)
        if guard is None or self._holding.get(alias) is guard:
            return
        progress = guard.last_progress()
        if progress is not None:
            self._catch_up(store, alias, datetime.fromtimestamp(progress, UTC))
        self._holding[alias] = guard

    def after_batch(
        self, alias: str, now: datetime, drained: bool, next_time: datetime | None
    ) -> None:
        """Note that everything due up to ``now`` was handled, when it was."""
        guard = self._holding.get(alias)
        if guard is None or guard is not self._scheduler._guards.get(alias) or not drained:
            return
        if next_time is not None and next_time <= now:
            return  # runs left for the next pass (a long catch-up): not done up to now
        try:
            guard.record_progress(now.timestamp())
        except OSError as exc:
            if not self._warned:  # once: it fails the same way on every pass
                self._warned = True
                self._scheduler.logger.warning(
                    "cannot record progress in %s (%s): a process taking the lock over "
                    "may run the latest slots again",
                    guard.progress_path,
                    exc,
                )

    def _catch_up(self, store: BaseStore, alias: str, until: datetime) -> None:
        scheduler = self._scheduler
        updated: list[Task] = []
        removed: list[str] = []
        for task in store.get_due_tasks(until):
            next_time = task.next_run_time
            while next_time is not None and next_time <= until:
                _, next_time = task.due_run_times(scheduler.timezone, until, _STEP)
                task.next_run_time = next_time
            if next_time is None:
                removed.append(task.id)
            else:
                updated.append(task)
        if updated or removed:
            store.release_tasks(scheduler.identity, updated, removed)
            scheduler.logger.info(
                "took store %r over from another process: %d task(s) advanced past %s, "
                "where it had processed them",
                alias,
                len(updated) + len(removed),
                until.isoformat(),
            )
