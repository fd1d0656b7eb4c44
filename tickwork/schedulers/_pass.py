"""The processing pass: take the due tasks of a store, decide which runs happen, hand
them to executors, and advance the tasks. Shared by every scheduler variant."""

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
from tickwork.tasks import Task
from tickwork.triggers.shutdown import ShutdownTrigger

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
        #: How long a claim on due tasks lasts in a shared store (see BaseStore).
        self.lease = timedelta(seconds=30)
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
            if alias in self._unreleased:
                store.release_tasks(scheduler.identity, *self._unreleased[alias])
                del self._unreleased[alias]
            tasks = store.acquire_due_tasks(now, limit, scheduler.identity, self.lease)
            updated: list[Task] = []
            removed: list[str] = []
            for task in tasks:
                next_time = self._run_due(task, now)
                if next_time is None and not isinstance(task.trigger, ShutdownTrigger):
                    removed.append(task.id)
                else:
                    task.next_run_time = next_time
                    updated.append(task)
            if tasks:
                try:
                    store.release_tasks(scheduler.identity, updated, removed)
                except Exception:
                    self._unreleased[alias] = (updated, removed)
                    raise
            # A full batch means more may be due: the caller comes back at once.
            next_time = now if len(tasks) >= limit else store.get_next_run_time()
        for task_id in removed:
            scheduler._shutdown_tasks.discard((alias, task_id))
            if scheduler._wants(TASK_REMOVED):
                scheduler._dispatch_event(TaskEvent(TASK_REMOVED, task_id, alias))
        return len(tasks), next_time

    def _run_due(self, task: Task, now: datetime) -> datetime | None:
        """Decide and submit the due runs of ``task``; return its next run time."""
        scheduler = self._scheduler
        run_times, next_time = task.due_run_times(scheduler.timezone, now, MAX_CATCH_UP)
        if not run_times:
            return task.next_run_time
        if task.coalesce:
            run_times = run_times[-1:]
        grace = task.mistrigger_grace_time
        if grace is not None:
            on_time = [t for t in run_times if (now - t).total_seconds() <= grace]
            if len(on_time) != len(run_times):
                self._report_missed(task, [t for t in run_times if t not in on_time], now)
            run_times = on_time
        if run_times:
            self.submit(task, run_times)
        return next_time

    def _report_missed(self, task: Task, missed: list[datetime], now: datetime) -> None:
        scheduler = self._scheduler
        for run_time in missed:
            scheduler.logger.warning(
                "run of task %r scheduled at %s was missed by %s (mistrigger_grace_time %ss)",
                task.id,
                run_time.isoformat(),
                now - run_time,
                task.mistrigger_grace_time,
            )
            if scheduler._wants(TASK_MISSED):
                scheduler._dispatch_event(
                    TaskExecutionEvent(TASK_MISSED, task.id, task.store_alias, run_time)
                )

    def submit(
        self, task: Task, run_times: list[datetime], raise_max_instances: bool = False
    ) -> None:
        """Hand runs to the task's executor and report the outcome as events."""
        scheduler = self._scheduler
        executor = scheduler._executors.get(task.executor)
        try:
            if executor is None:
                raise UnknownAliasError("executor", task.executor, list(scheduler._executors))
            executor.send_task(task, run_times)
        except MaxInstancesReachedError as exc:
            scheduler.logger.warning(
                "run of task %r at %s skipped: %s", task.id, run_times[-1].isoformat(), exc
            )
            if scheduler._wants(TASK_MAX_INSTANCES):
                scheduler._dispatch_event(
                    TaskSubmissionEvent(
                        TASK_MAX_INSTANCES, task.id, task.store_alias, tuple(run_times)
                    )
                )
            if raise_max_instances:
                raise
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
