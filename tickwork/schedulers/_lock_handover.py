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

That holds for a new holder that started *after* those slots too. A gunicorn ``kill
-HUP`` (the usual reload) replaces every worker at once: the old ones stop while the
new ones are still importing the app, and a new worker's tasks begin at the first slot
after its own start. The slots in between were in nobody's store, so they were lost
without a run, a ``TASK_MISSED`` or a log line (1 to 2 slots per reload, measured with
a 1 s task; see ``tests/fleet/test_gunicorn_reload.py``). So the new holder also
*rewinds* each task whose first run time lies after the last recorded pass to the first
slot after that pass (:meth:`LockHandover._rewind`): those slots then run, or are
reported missed, by the usual rules.

What the default ``mistrigger_grace_time`` of 1 s means for a reload: a slot that fell
due while no process held the lock is run only if the new holder takes the lock within
1 s of it; later it is reported ``TASK_MISSED`` (with a warning in the log), never run
late and never dropped silently. A new worker takes a free lock as its scheduler
starts; a standby retries every ``lock_retry_interval`` (1 s). Slots more than
:data:`LOOK_BACK` old (the service was stopped, not reloaded) are not reported one by
one: one warning per task names their span.

The progress file is only a hint from another process: a time in the future (a fast
clock on another host, a file planted in /tmp) is clamped to now and logged, so it
cannot stop the store for hours or make the catch-up walk to the year 2100.

A store that outlives its schedulers (SQL, Redis: shared by a fleet, no lock) has no
such gap to give back: its tasks keep their stored next run times, and a worker that
re-adds its tasks with ``replace_existing=True`` keeps them too when the trigger is
unchanged (see ``TaskManager.store_task``), so the runs due during a reload run or are
reported missed by the usual rules.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta

from tickwork.locks import FileLockProtected
from tickwork.schedulers._dispatch import Dispatcher
from tickwork.schedulers._planner import Planner
from tickwork.stores.base import BaseStore
from tickwork.tasks import Task

__all__ = ["LOOK_BACK", "LockHandover"]

#: How far back a new holder looks for slots that fell due after the last holder's last
#: pass (:meth:`LockHandover._rewind`). A reload leaves a gap of seconds (up to the
#: server's graceful timeout when the old holder waits for a long run); a longer one
#: means the service was stopped, and reporting every slot of those hours one by one
#: would flood the log: their span is logged once per task instead.
LOOK_BACK = timedelta(minutes=5)


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
            if trusted:
                self._rewind(store, alias, progress, now)
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

    def _rewind(self, store: BaseStore, alias: str, progress: datetime, now: datetime) -> None:
        """Give back the slots that fell due after the last holder's last pass
        (``progress``) but before this process's own next run time of each task: nobody
        processed them (see the module docstring: the gunicorn reload incident). Each
        such task's next run time becomes its first slot after ``progress``, no earlier
        than :data:`LOOK_BACK` before ``now`` (older ones are named in a warning), and
        this batch applies the usual rules to it. Only slots up to ``now`` are given
        back: a later first run time is the task's own business (a ``next_run_time``
        given on purpose)."""
        since = max(progress, now - LOOK_BACK)
        rewound: list[Task] = []
        for task in store.get_all_tasks():
            own = task.next_run_time
            if own is None or own <= progress:
                continue  # paused, or due already (the catch-up above moved it here)
            try:
                older = self._first_after(task, progress, now)
                if older is None or older >= own or older > now:
                    continue  # no slot in the gap
                first = self._first_after(task, since, now) if since > progress else older
            except Exception as exc:  # a broken trigger: the pass sets it aside
                self._logger.debug("task %r not rewound: %s", task.id, exc)
                continue
            if first is None or first > own:
                first = own
            if older < first:
                self._logger.warning(
                    "task %r: runs from %s until %s fell due while no process held the "
                    "lock of store %r, more than %s ago: not run",
                    task.id,
                    older.isoformat(),
                    first.isoformat(),
                    alias,
                    LOOK_BACK,
                    extra={"task_id": task.id},
                )
            if first >= own or first > now:
                continue
            self._logger.info(
                "task %r: its runs from %s were processed by no process (the lock of store "
                "%r was free, or its holder stopping, after %s): they run now or are "
                "reported missed",
                task.id,
                first.isoformat(),
                alias,
                progress.isoformat(),
                extra={"task_id": task.id},
            )
            task.next_run_time = first
            rewound.append(task)
        if rewound:
            store.release_tasks(self._identity, rewound, [])

    def _first_after(self, task: Task, moment: datetime, now: datetime) -> datetime | None:
        """The first fire time of ``task`` strictly after ``moment`` (the progress time
        itself was processed: a slot exactly there ran)."""
        trigger, zone = task.trigger, self._planner.timezone
        first = trigger.get_next_trigger_time(zone, None, moment)
        while first is not None and first <= moment:  # (a first fire time may equal it)
            first = trigger.get_next_trigger_time(zone, first, now)
        return first
