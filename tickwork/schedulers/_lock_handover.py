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

The progress file is only a hint from another process: a time in the future (a fast
clock on another host, a file planted in /tmp) is clamped to now and logged, so it
cannot stop the store for hours or make the catch-up walk to the year 2100.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

from tickwork.locks import FileLockProtected
from tickwork.schedulers._dispatch import Dispatcher
from tickwork.schedulers._planner import Planner
from tickwork.stores.base import BaseStore
from tickwork.tasks import Task

__all__ = ["LockHandover"]


class LockHandover:
    """For one store under ``lock_path``: notices when this process takes the lock, and
    records how far it processed the store."""

    def __init__(
        self,
        guard: FileLockProtected,
        planner: Planner,
        dispatcher: Dispatcher,
        identity: str,
        logger: logging.Logger,
    ) -> None:
        self.guard = guard
        self._planner = planner
        self._dispatcher = dispatcher
        self._identity = identity
        self._logger = logger
        self._holding = False
        self._warned = False

    def before_batch(self, store: BaseStore, alias: str, now: datetime) -> list[str]:
        """On the first batch under a newly taken lock, skip what the last holder ran.
        Returns the ids of tasks that finished in the skipped part (deleted)."""
        if self._holding:
            return []
        removed: list[str] = []
        progress, trusted = self._read_progress(now)
        if progress is not None:
            removed = self._catch_up(store, alias, progress, trusted)
        self._holding = True
        return removed

    def lost(self) -> None:
        """The lock was released: the next time it is taken is a new handover."""
        self._holding = False

    def after_batch(self, now: datetime, drained: bool, next_time: datetime | None) -> None:
        """Note that everything due up to ``now`` was handled, when it was."""
        if not self._holding or not drained:
            return
        if next_time is not None and next_time <= now:
            return  # runs left for the next pass (a long catch-up): not done up to now
        try:
            self.guard.record_progress(now.timestamp())
        except OSError as exc:
            if not self._warned:  # once: it fails the same way on every pass
                self._warned = True
                self._logger.warning(
                    "cannot record progress in %s (%s): a process taking the lock over "
                    "may run the latest slots again",
                    self.guard.progress_path,
                    exc,
                )

    def _read_progress(self, now: datetime) -> tuple[datetime | None, bool]:
        """The time up to which the last holder processed the store, and whether it can
        be trusted (a time in the future cannot: it is clamped to now)."""
        value = self.guard.last_progress()
        if value is None or math.isnan(value):
            return None, True
        if value > now.timestamp():
            self._logger.warning(
                "the progress file %s says the last holder processed the store up to %r, "
                "which is in the future (a clock ahead on another host, or a stray file): "
                "taken as now (%s)",
                self.guard.progress_path,
                value,
                now.isoformat(),
            )
            return now, False
        return datetime.fromtimestamp(value, UTC), True

    def _catch_up(self, store: BaseStore, alias: str, until: datetime, trusted: bool) -> list[str]:
        """Advance the store's tasks past ``until`` without running them. Slots the last
        holder processed ran there: logged, not reported missed. With an untrusted
        progress time nobody knows they ran: each task's skipped slots are reported
        ``TASK_MISSED``; deleted one-shot tasks are reported removed by the caller."""
        updated: list[Task] = []
        removed: list[Task] = []
        skipped: list[tuple[Task, datetime]] = []
        for task in store.get_due_tasks(until):
            try:
                next_time = self._planner.advance_past(task, until)
            except Exception as exc:  # a broken trigger: the pass sets it aside
                self._logger.debug("task %r not caught up: %s", task.id, exc)
                continue
            last = task.next_run_time
            if last is not None:
                skipped.append((task, last))
            task.next_run_time = next_time
            (removed if next_time is None else updated).append(task)
        if not (updated or removed):
            return []
        store.release_tasks(self._identity, updated, [task.id for task in removed])
        self._logger.info(
            "took store %r over from another process: %d task(s) advanced past %s, "
            "where it had processed them",
            alias,
            len(updated) + len(removed),
            until.isoformat(),
        )
        for task, first in skipped:
            if trusted:
                self._logger.info(
                    "task %r: runs from %s up to %s skipped: the previous lock holder ran them",
                    task.id,
                    first.isoformat(),
                    until.isoformat(),
                    extra={"task_id": task.id},
                )
            else:
                self._dispatcher.report_missed(
                    task,
                    [first],
                    until,
                    "skipped at a lock handover with a progress time in the future",
                )
        return [task.id for task in removed]
