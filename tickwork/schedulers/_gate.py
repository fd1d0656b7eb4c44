"""The store gate: everything about one store's access, so a fault stays with its store.

A scheduler has one :class:`StoreGate` per store. The gate decides whether this process
may process the store now (``lock_path``: the file lock, standing by, the progress file
of a handover; backing off after errors), runs one batch of the pass over it, and keeps
what must survive a failed batch: write-backs of runs already started, which go first
on the next batch so no run starts twice.

Faults stay where they start:

* a task whose trigger or rules raise while its runs are planned is **set aside**:
  paused in its store (kept, never deleted), logged once with its id and the error, and
  reported as ``TASK_SET_ASIDE``; the other tasks of the batch go on, and the runs
  already started are written back with them;
* a store that fails (or, with a bound on its I/O, is too slow) is **backed off**: 0.5 s,
  1 s, 2 s ... 30 s, reported once per streak as ``STORE_UNAVAILABLE`` and in the log,
  ``STORE_RECOVERED`` when it answers again; the other stores keep their schedule;
* a store that does I/O (``blocking``) is processed on a thread of its own gate, so a
  hung database holds up only its own gate, never the event loop or another store.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from tickwork.events import (
    STORE_RECOVERED,
    STORE_UNAVAILABLE,
    TASK_SET_ASIDE,
    SchedulerEvent,
    TaskEvent,
)
from tickwork.locks import FileLockProtected
from tickwork.schedulers._dispatch import Dispatcher
from tickwork.schedulers._events import EventHub
from tickwork.schedulers._lock_handover import LockHandover
from tickwork.schedulers._planner import Planner, write_back
from tickwork.schedulers._runs import RunKeeper
from tickwork.schedulers._shared_pass import SharedStorePass
from tickwork.stores.base import BaseStore
from tickwork.tasks import Task

__all__ = ["BatchResult", "StoreGate"]

#: Backoff after a store failure: 0.5 s, 1 s, 2 s ... capped at 30 s.
FIRST_RETRY = 0.5
MAX_RETRY = 30.0

#: The lease passed to ``acquire_due_tasks`` of single-process stores (which ignore it;
#: shared stores use their own ``lease_time``).
LOCAL_LEASE = timedelta(seconds=30)


@dataclass(slots=True)
class BatchResult:
    """What one batch of a store did: tasks handled, when the store next needs the
    scheduler (``now`` after a full batch: more may be due), and the ids of tasks the
    batch removed (their triggers are finished)."""

    # (Not frozen: one is made at every wake-up, and a frozen dataclass's __init__ sets
    # each field through object.__setattr__. Nothing changes one once made.)
    count: int
    next_time: datetime | None
    removed: tuple[str, ...] = ()


class StoreGate:
    """Access to one store (see the module docstring)."""

    def __init__(
        self,
        alias: str,
        store: BaseStore,
        planner: Planner,
        dispatcher: Dispatcher,
        runs: RunKeeper,
        events: EventHub,
        identity: str,
        logger: logging.Logger,
    ) -> None:
        self.alias = alias
        self.store = store
        #: Held around every change of this store's tasks: the pass's batch and the task
        #: manager's writes never interleave (a write-back would undo a user's change).
        self.lock = threading.RLock()
        self._planner = planner
        self._dispatcher = dispatcher
        self._events = events
        self._identity = identity
        self._logger = logger
        self._shared = (
            SharedStorePass(alias, store, planner, dispatcher, runs, identity, logger)
            if store.supports_leases
            else None
        )
        self._handover: LockHandover | None = None
        #: True while another process holds this store's ``lock_path`` lock.
        self.standby = False
        self._failures = 0
        self._retry_at: datetime | None = None
        #: Advanced tasks whose write-back failed. Their runs were already handed to
        #: executors, so they are written back before anything else is claimed from
        #: this store: otherwise the same runs would be claimed and run again.
        self._unreleased: tuple[list[Task], list[str]] | None = None
        self._io: concurrent.futures.ThreadPoolExecutor | None = None
        #: The batch running on the gate's thread (blocking stores), if any.
        self.in_flight: concurrent.futures.Future[BatchResult] | None = None
        #: When the store needs the scheduler next, as its last batch answered.
        self.next_time: datetime | None = None
        #: Set when this process changed the store's tasks: a blocking store is then
        #: processed at the next pass even before its next time or poll.
        self.dirty = True
        self._launched_at: datetime | None = None

    @property
    def lock_guard(self) -> FileLockProtected | None:
        """This store's ``lock_path`` lock (None without ``lock_path``, or before
        :meth:`open`): its holder is the store's leader (see ``_leadership.py``)."""
        return None if self._handover is None else self._handover.guard

    @property
    def blocking(self) -> bool:
        """True when the store does I/O: its batches run on the gate's own thread."""
        return self.store.blocking

    # -- lifecycle ----------------------------------------------------------------------

    def open(self, lock_path: str | None) -> None:
        """Prepare for processing: with ``lock_path``, check the lock's directory now (a
        missing or read-only one fails ``start()``, by name)."""
        if lock_path is not None:
            guard = FileLockProtected(lock_path, self.alias)
            self._handover = LockHandover(
                guard, self._planner, self._dispatcher, self._identity, self._logger
            )

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait for the batch on the gate's thread to end; True when none is running."""
        future = self.in_flight
        if future is None:
            return True
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            return False
        except BaseException:  # its outcome was logged by the batch itself
            pass
        return True

    def close(self) -> None:
        """Release the store's lock and the gate's thread (after :meth:`wait_idle`)."""
        if self._handover is not None:
            self._handover.guard.release()
            self._handover.lost()
        if self._io is not None:
            self._io.shutdown(wait=False)
            self._io = None
        self.in_flight = None
        self.standby = False

    # -- the pass -----------------------------------------------------------------------

    def may_process(self) -> bool:
        """With ``lock_path``, only the process holding the store's lock processes it;
        the others stand by and try again at every pass."""
        handover = self._handover
        if handover is None:
            return True
        guard = handover.guard
        if guard.held:
            return True
        if guard.acquire(blocking=False):
            self.standby = False
            self._logger.info("took the lock %s: processing store %r", guard.path, self.alias)
            return True
        self.standby = True
        return False

    def wants_batch(self, now: datetime) -> bool:
        """For a blocking store: whether a pass at ``now`` should run a batch of it (it
        is not running one, and something may be due, its poll came round, or this
        process changed its tasks). A batch that just ended wakes the driver, and this
        keeps that wake-up from starting the same query again."""
        if self.in_flight is not None and not self.in_flight.done():
            return False
        if self.dirty or self._launched_at is None:
            return True
        if self.next_time is not None and self.next_time <= now:
            return True
        poll = self.store.poll_interval
        return poll is not None and now >= self._launched_at + timedelta(seconds=poll)

    def launch(self, now: datetime, limit: int) -> concurrent.futures.Future[BatchResult]:
        """Run :meth:`process_batch` on the gate's thread and return its future."""
        self.dirty = False
        self._launched_at = now
        if self._io is None:
            self._io = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix=f"tickwork-store-{self.alias}"
            )
        future = self._io.submit(self.process_batch, now, limit)
        self.in_flight = future
        return future

    def process_batch(self, now: datetime, limit: int) -> BatchResult:
        """Handle one batch of due tasks. Never raises: a failing store is logged,
        reported and backed off (see the module docstring)."""
        retry_at = self._retry_at
        if retry_at is not None and now < retry_at:
            return BatchResult(0, retry_at)
        try:
            with self.lock:
                if self._shared is None and self._handover is None:
                    result = self._local_batch(now, limit)  # (most stores: a call less)
                else:
                    result = self._batch(now, limit)
        except Exception as exc:
            return BatchResult(0, self._note_failure(now, exc))
        if self._failures:
            self._failures = 0
            self._retry_at = None
            self._logger.warning("store %r is reachable again; processing resumes", self.alias)
            self._events.emit(SchedulerEvent(STORE_RECOVERED, self.alias))
        self.next_time = result.next_time
        return result

    def _batch(self, now: datetime, limit: int) -> BatchResult:
        """A batch of a shared store, or of one under ``lock_path``."""
        store, handover = self.store, self._handover
        if self._shared is not None:
            count, removed = self._shared.process_batch(now, limit, self.set_aside)
            # A full batch means more may be due: the caller comes back at once.
            # (Shared stores are polled: no look at their retries.)
            next_time = now if count >= limit else store.get_next_run_time()
            return BatchResult(count, next_time, tuple(removed))
        assert handover is not None
        taken_over = handover.before_batch(store, self.alias, now)
        result = self._local_batch(now, limit)
        handover.after_batch(now, result.count < limit, result.next_time)
        if not taken_over:
            return result
        return BatchResult(result.count, result.next_time, (*taken_over, *result.removed))

    def _local_batch(self, now: datetime, limit: int) -> BatchResult:
        """A store only this scheduler processes: runs are handed over first and the
        tasks written back after. A crash in between repeats those runs after a restart
        rather than losing them silently."""
        store, owner = self.store, self._identity
        if self._unreleased is not None:
            store.release_tasks(owner, *self._unreleased)
            self._unreleased = None
        # Pending retries that came due first: they were due before the tasks' new runs.
        for run in store.take_over_runs(now, limit, owner, now + LOCAL_LEASE):
            run.task.store_alias = self.alias  # (the snapshot a store kept may not say)
            self._dispatcher.start_due(run, now)
        tasks = store.acquire_due_tasks(now, limit, owner, LOCAL_LEASE)
        removed: list[str] = []
        if tasks:
            planner, dispatcher = self._planner, self._dispatcher
            updated: list[Task] = []
            comparable = planner.comparable_now(now)
            for task in tasks:
                try:
                    run_times, missed, next_time = planner.decide(task, comparable)
                except Exception as exc:
                    updated.append(self.set_aside(task, exc))
                    continue
                if missed:
                    dispatcher.report_missed(task, missed, comparable)
                if run_times:
                    dispatcher.submit(task, run_times)
                write_back(task, next_time, updated, removed)
            try:
                store.release_tasks(owner, updated, removed)
            except Exception:
                self._unreleased = (updated, removed)
                raise
        count = len(tasks)
        if count >= limit:  # a full batch: more may be due, the caller comes back at once
            return BatchResult(count, now, tuple(removed))
        next_time = store.get_next_run_time()
        retry_time = store.next_retry_time()
        if retry_time is not None and (next_time is None or retry_time < next_time):
            next_time = retry_time
        return BatchResult(count, next_time, tuple(removed))

    def set_aside(self, task: Task, exc: Exception) -> Task:
        """Pause a task whose planning raised, so it stays in its store but stops coming
        due; log it and report ``TASK_SET_ASIDE``. Returns it for the write-back."""
        self._logger.error(
            "task %r set aside (paused) in store %r: planning its runs raised %s: %s; "
            "fix it (update_task / reschedule_task) and resume it",
            task.id,
            self.alias,
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra={"task_id": task.id},
        )
        task.next_run_time = None
        self._events.emit(TaskEvent(TASK_SET_ASIDE, task.id, self.alias, exception=exc))
        return task

    def _note_failure(self, now: datetime, exc: Exception) -> datetime:
        self._failures += 1
        delay = min(FIRST_RETRY * 2 ** (self._failures - 1), MAX_RETRY)
        retry_at = self._retry_at = now + timedelta(seconds=delay)
        if self._failures == 1:
            self._logger.error(
                "store %r failed; retrying in %.1f s (%s: %s); the other stores keep running",
                self.alias,
                delay,
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
            self._events.emit(SchedulerEvent(STORE_UNAVAILABLE, self.alias, exception=exc))
        else:
            self._logger.warning(
                "store %r still failing (%s: %s); retrying in %.1f s",
                self.alias,
                type(exc).__name__,
                exc,
                delay,
            )
        self.next_time = retry_at
        return retry_at
