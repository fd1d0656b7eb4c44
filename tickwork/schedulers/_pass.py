"""The processing pass: take the due tasks of a store, decide which runs happen, hand
them to executors, and advance the tasks. Shared by every scheduler variant.

Stores only this scheduler processes take the path in :meth:`StoreProcessor._local_batch`;
stores shared by a fleet (``supports_leases``) the one in
:mod:`tickwork.schedulers._shared_pass`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tickwork.events import (
    TASK_ERROR,
    TASK_MAX_INSTANCES,
    TASK_MISSED,
    TASK_REMOVED,
    TASK_SUBMITTED,
    TaskEvent,
    TaskExecutionEvent,
    TaskSubmissionEvent,
)
from tickwork.exceptions import MaxInstancesReachedError, UnknownAliasError
from tickwork.schedulers._lock_handover import LockHandover
from tickwork.schedulers._shared_pass import SharedStorePass
from tickwork.stores.base import BaseStore
from tickwork.tasks import Task
from tickwork.triggers.shutdown import ShutdownTrigger
from tickwork.utils import is_fixed_offset

if TYPE_CHECKING:
    from tickwork.schedulers.base import BaseScheduler

__all__ = ["StoreProcessor"]

#: At most this many overdue fire times of one task are handled per pass (with
#: coalesce=False a 1 ms interval after a day of downtime would otherwise build a list
#: of 86 million runs); the rest come due in the following passes.
MAX_CATCH_UP = 1000

#: Backoff after a store failure: 0.5 s, 1 s, 2 s ... capped at 30 s.
FIRST_RETRY = 0.5
MAX_RETRY = 30.0


class StoreProcessor:
    """Runs the processing pass for one scheduler, store by store, batch by batch."""

    def __init__(self, scheduler: BaseScheduler) -> None:
        self._scheduler = scheduler
        #: The lease passed to ``acquire_due_tasks`` of single-process stores (which
        #: ignore it; shared stores use their own ``lease_time``).
        self.lease = timedelta(seconds=30)
        self._shared = SharedStorePass(self)
        self._handover = LockHandover(scheduler)
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, datetime] = {}
        #: Advanced tasks whose write-back failed, per store. Their runs were already
        #: handed to executors, so they are written back before anything else is claimed
        #: from that store: otherwise the same runs would be claimed and run again.
        self._unreleased: dict[str, tuple[list[Task], list[str]]] = {}

    def process_store(self, alias: str, now: datetime) -> tuple[int, datetime | None]:
        """Handle one batch of ``alias``'s due tasks. Returns how many tasks were handled
        and when the store next needs attention. A failing store is logged and retried
        with exponential backoff; it never stops the scheduler or the other stores."""
        retry_at = self._retry_at.get(alias)
        if retry_at is not None and now < retry_at:
            return 0, retry_at
        try:
            result = self._process_batch(alias, now)
        except Exception as exc:
            return 0, self._note_failure(alias, now, exc)
        if self._failures.pop(alias, None) is not None:
            self._retry_at.pop(alias, None)
            self._scheduler.logger.warning("store %r is reachable again; processing resumes", alias)
        return result

    def _note_failure(self, alias: str, now: datetime, exc: Exception) -> datetime:
        failures = self._failures[alias] = self._failures.get(alias, 0) + 1
        delay = min(FIRST_RETRY * 2 ** (failures - 1), MAX_RETRY)
        retry_at = self._retry_at[alias] = now + timedelta(seconds=delay)
        log = self._scheduler.logger
        if failures == 1:
            log.error("store %r failed; retrying in %.1f s", alias, delay, exc_info=exc)
        else:
            log.warning(
                "store %r still failing (%s: %s); retrying in %.1f s",
                alias,
                type(exc).__name__,
                exc,
                delay,
            )
        return retry_at

    def _process_batch(self, alias: str, now: datetime) -> tuple[int, datetime | None]:
        scheduler = self._scheduler
        store = scheduler._stores.get(alias)
        lock = scheduler._store_locks.get(alias)
        if store is None or lock is None:
            return 0, None
        limit = scheduler.batch_size
        with lock:
            if store.supports_leases:
                count, removed = self._shared.process_batch(store, alias, now, limit)
            else:
                self._handover.before_batch(store, alias)
                count, removed = self._local_batch(store, alias, now, limit)
            # A full batch means more may be due: the caller comes back at once.
            next_time = now if count >= limit else store.get_next_run_time()
            if not store.supports_leases:
                self._handover.after_batch(alias, now, count < limit, next_time)
        for task_id in removed:
            scheduler._shutdown_tasks.discard((alias, task_id))
            if scheduler._wants(TASK_REMOVED):
                scheduler._dispatch_event(TaskEvent(TASK_REMOVED, task_id, alias))
        return count, next_time

    def _local_batch(
        self, store: BaseStore, alias: str, now: datetime, limit: int
    ) -> tuple[int, list[str]]:
        """A store only this scheduler processes: runs are handed over first and the
        tasks written back after. A crash in between repeats those runs after a restart
        rather than losing them silently."""
        scheduler = self._scheduler
        if alias in self._unreleased:
            store.release_tasks(scheduler.identity, *self._unreleased[alias])
            del self._unreleased[alias]
        tasks = store.acquire_due_tasks(now, limit, scheduler.identity, self.lease)
        updated: list[Task] = []
        removed: list[str] = []
        now = self.comparable_now(now)
        for task in tasks:
            run_times, missed, next_time = self.decide(task, now)
            if missed:
                self.report_missed(task, missed, now)
            if run_times:
                self.submit(task, run_times)
            self.advance(task, next_time, updated, removed)
        if tasks:
            try:
                store.release_tasks(scheduler.identity, updated, removed)
            except Exception:
                self._unreleased[alias] = (updated, removed)
                raise
        return len(tasks), removed

    def comparable_now(self, now: datetime) -> datetime:
        """``now`` in the scheduler's zone when that zone has a fixed offset (UTC on most
        servers): tasks' run times are mostly in that zone, and two datetimes sharing a
        tzinfo compare and subtract without asking it for offsets, which is several
        times cheaper per comparison. In a zone with DST that shortcut would compare wall
        times (wrong in the repeated hour), so ``now`` stays as it is."""
        zone = self._scheduler.timezone
        if now.tzinfo is not zone and is_fixed_offset(zone):
            return now.astimezone(zone)
        return now

    def decide(
        self, task: Task, now: datetime
    ) -> tuple[list[datetime], list[datetime], datetime | None]:
        """Return the runs of ``task`` to start now, those too late to start (past
        ``mistrigger_grace_time``), and the task's next run time."""
        first = task.next_run_time
        if first is None or first > now:
            return [], [], first
        # The rules straight from the task's shared profile: this runs for every run, and
        # the task's properties cost a frame each on 3.11.
        profile = task._profile
        # The common case, one due run, without building lists to filter: the same
        # answer as the general path below (which starts over when more are due).
        next_time = task.trigger.get_next_trigger_time(self._scheduler.timezone, first, now)
        if next_time is None or next_time > now:
            grace = profile.mistrigger_grace_time
            if grace is None or (now - first).total_seconds() <= grace:
                return [first], [], next_time
            return [], [first], next_time
        run_times, next_time = task.due_run_times(self._scheduler.timezone, now, MAX_CATCH_UP)
        if profile.coalesce:
            run_times = run_times[-1:]
        grace = profile.mistrigger_grace_time
        if grace is None:
            return run_times, [], next_time
        on_time = [t for t in run_times if (now - t).total_seconds() <= grace]
        missed = [t for t in run_times if (now - t).total_seconds() > grace]
        return on_time, missed, next_time

    @staticmethod
    def advance(
        task: Task, next_time: datetime | None, updated: list[Task], removed: list[str]
    ) -> None:
        """Sort ``task`` into the write-back lists: advanced, or removed when finished."""
        if next_time is None and not isinstance(task.trigger, ShutdownTrigger):
            removed.append(task.id)
        else:
            task.next_run_time = next_time
            updated.append(task)

    def report_missed(
        self, task: Task, missed: list[datetime], now: datetime, abandoned_by: str | None = None
    ) -> None:
        """Log and report (``TASK_MISSED``) runs too late to start; ``abandoned_by``
        names the dead scheduler whose run was taken over too late to repeat it."""
        scheduler = self._scheduler
        why = f", abandoned by {abandoned_by}" if abandoned_by else ""
        for run_time in missed:
            scheduler.logger.warning(
                "run of task %r scheduled at %s was missed by %s (mistrigger_grace_time %ss%s)",
                task.id,
                run_time.isoformat(),
                now - run_time,
                task.mistrigger_grace_time,
                why,
            )
            if scheduler._wants(TASK_MISSED):
                scheduler._dispatch_event(
                    TaskExecutionEvent(TASK_MISSED, task.id, task.store_alias, run_time)
                )

    def report_max_instances(self, task: Task, run_times: list[datetime], reason: object) -> None:
        """Log and report (``TASK_MAX_INSTANCES``) runs skipped because too many
        instances of the task are running."""
        scheduler = self._scheduler
        scheduler.logger.warning(
            "run of task %r at %s skipped: %s", task.id, run_times[-1].isoformat(), reason
        )
        if scheduler._wants(TASK_MAX_INSTANCES):
            scheduler._dispatch_event(
                TaskSubmissionEvent(TASK_MAX_INSTANCES, task.id, task.store_alias, tuple(run_times))
            )

    def submit(
        self, task: Task, run_times: list[datetime], raise_max_instances: bool = False
    ) -> bool:
        """Hand runs to the task's executor and report the outcome as events. Returns
        False when the executor refused them for ``max_instances`` (no run events
        follow then); True otherwise (a failure to submit is reported as ``TASK_ERROR``
        for each run)."""
        scheduler = self._scheduler
        executor = scheduler._executors.get(task._profile.executor)
        try:
            if executor is None:
                raise UnknownAliasError("executor", task.executor, list(scheduler._executors))
            executor.send_task(task, run_times)
        except MaxInstancesReachedError as exc:
            self.report_max_instances(task, run_times, exc)
            if raise_max_instances:
                raise
            return False
        except Exception as exc:
            scheduler.logger.exception(
                "could not submit task %r to executor %r", task.id, task.executor
            )
            for run_time in run_times:
                scheduler._dispatch_event(
                    TaskExecutionEvent(
                        TASK_ERROR, task.id, task.store_alias, run_time, exception=exc
                    )
                )
        else:
            if scheduler._wants(TASK_SUBMITTED):
                scheduler._dispatch_event(
                    TaskSubmissionEvent(TASK_SUBMITTED, task.id, task.store_alias, tuple(run_times))
                )
        return True

    def shutdown(self) -> None:
        """Delete the records of runs that ended and stop renewing (the scheduler is
        shutting down; called before its stores shut down)."""
        self._shared.runs.close()
