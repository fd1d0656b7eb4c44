"""The store contract: where tasks are kept between runs.

The docstrings of :class:`BaseStore` are the specification every store follows and the
shared contract suite (``tests/stores/test_contract.py``) checks.

Stores that several schedulers share (``supports_leases = True``: the SQL and Redis
stores) also keep *leases*, so that every run happens once across the whole fleet:

* a scheduler **claims** due tasks (:meth:`BaseStore.acquire_due_tasks`) for a lease;
  no other scheduler gets them until it writes them back or the lease expires;
* it **writes the advanced tasks back together with a record of each run** it is
  about to hand to an executor (:meth:`BaseStore.release_tasks` with ``runs``), in
  one transaction, and only then starts the runs;
* while runs are in progress it **renews** their records (:meth:`BaseStore.renew_runs`)
  and **deletes** each one when the run finishes (:meth:`BaseStore.finish_runs`);
* records whose lease expired belong to a scheduler that died: another one **takes
  them over** (:meth:`BaseStore.take_over_runs`) and re-runs or reports them missed;
* ``max_instances`` is checked against the records of the whole fleet
  (:meth:`BaseStore.count_runs`);
* a run that failed and is to be tried again becomes a **pending retry**
  (:meth:`BaseStore.retry_runs`): its record loses its owner and is due at the retry
  time, when exactly one scheduler takes it over (:meth:`BaseStore.take_over_runs`),
  also when the scheduler that failed the run died right after;
* a request to **cancel** a run is stored on its record
  (:meth:`BaseStore.cancel_runs`); the scheduler running it finds it when it renews
  its records (:meth:`BaseStore.cancel_requests`).

Single-process stores (memory, file) keep the defaults below: claims are plain reads,
and the run-record methods do nothing, except for pending retries, which every store
keeps (in this process's memory by default; the file store keeps them on disk).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, TypeAlias

from tickwork.exceptions import TaskLookupError
from tickwork.runs.base import RunLog
from tickwork.runs.memory import MemoryRunLog
from tickwork.tasks import Task

__all__ = ["BaseStore", "InProgressRun", "LeaderTerm", "NextRunTime", "PendingRetry", "RunKey"]

#: A run as the store knows it: (task id, scheduled run time).
RunKey = tuple[str, datetime]

#: What :meth:`BaseStore.resume_tasks_by_tag` asks of the scheduler for each paused
#: task: the time to resume it at, ``None`` when its trigger is finished (the task is
#: removed), or ``False`` to leave it as it is (a task that is never due by design, such
#: as one run at shutdown).
NextRunTime: TypeAlias = Callable[[Task], datetime | Literal[False] | None]


@dataclass(frozen=True, slots=True)
class LeaderTerm:
    """The running term of a fleet's leader, as the electing store records it
    (:meth:`BaseStore.get_leader`)."""

    #: The leading scheduler's ``identity``.
    owner: str
    #: The term's number: it grows with every new term (the fencing token).
    generation: int
    #: Seconds until the term ends unless its owner renews it, by the store's clock.
    expires_in: float


@dataclass(frozen=True, slots=True)
class InProgressRun:
    """A run recorded in a shared store, as returned by :meth:`BaseStore.take_over_runs`.

    ``task`` is the task as it was when the run was handed over (so a one-shot task that
    is already deleted can still be re-run); ``owner`` is the scheduler that held the
    run before this take-over.
    """

    task: Task
    run_time: datetime
    #: The scheduler that held the record before; ``""`` for a pending retry (nobody
    #: held it: it waited for its time).
    owner: str
    #: The attempt to make now: the abandoned attempt's number + 1, or the retry's.
    attempt: int = 1
    #: When a pending retry was due (``None`` for an abandoned run): the grace time
    #: counts from it, not from the scheduled time.
    due: datetime | None = None

    @property
    def is_retry(self) -> bool:
        """True for a pending retry that came due (not a run abandoned by its owner)."""
        return self.due is not None


@dataclass(frozen=True, slots=True)
class PendingRetry:
    """A failed run to try again (see :meth:`BaseStore.retry_runs`): ``task`` as it was
    run, the run's scheduled ``run_time`` (its key, unchanged across attempts), the
    ``attempt`` to make and when it is ``due``."""

    task: Task
    run_time: datetime
    attempt: int
    due: datetime


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

    #: True when the store leases due tasks and records runs in progress, so several
    #: schedulers (processes, hosts) may share it and still run each slot once. The
    #: scheduler then follows the protocol in the module docstring.
    supports_leases: ClassVar[bool] = False

    #: True when the schedulers sharing the store can elect a leader through it
    #: (:meth:`elect`, :meth:`resign`), and it keeps leader-only tasks for the leader.
    supports_election: ClassVar[bool] = False

    #: Seconds a claim on due tasks, or the record of a run in progress, stays valid
    #: without renewal. A scheduler that dies is replaced within this time (plus one
    #: poll interval). Renewals happen every third of it.
    lease_time: float = 10.0

    def __init__(self) -> None:
        self.alias: str | None = None
        self.logger = logging.getLogger(f"tickwork.stores.{type(self).__name__}")
        self._run_log: RunLog | None = None

    @property
    def run_log(self) -> RunLog:
        """Where the records of this store's runs are kept (see :mod:`tickwork.runs`).
        Persistent stores keep them beside their tasks (files, a table, Redis keys), so
        every scheduler sharing the store reads the same history; the default is a
        bounded log in this process's memory."""
        log: RunLog | None = getattr(self, "_run_log", None)  # (a subclass may skip __init__)
        if log is None:
            log = self._run_log = self._make_run_log()
        return log

    def _make_run_log(self) -> RunLog:
        """The run log of this store (override in stores that keep records elsewhere);
        called once, at first use."""
        return MemoryRunLog()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, alias: str) -> None:
        """Open connections, create the schema or directory. Called by the scheduler when
        the store is added to a running scheduler or the scheduler starts."""
        self.alias = alias

    def shutdown(self) -> None:
        """Release connections and files. Tasks stay stored (also in the memory store,
        which keeps them for a later ``start()``)."""

    # -- writes ---------------------------------------------------------------------------

    def _install_serializer(self, serializer: Any) -> None:
        """Replace this store's serializer (the scheduler's signing/encryption wrapper,
        :mod:`tickwork.security`); a store whose helpers hold the serializer too
        passes it on to them. (Only stores with a ``serializer`` get one.)"""
        self.__dict__["serializer"] = serializer

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

    def get_tasks_by_tag(self, tag: str) -> list[Task]:
        """Return the tasks that have ``tag`` among their :attr:`~tickwork.tasks.Task.tags`,
        ordered as :meth:`get_all_tasks` orders them. One call of the store: the scheduler's
        ``get_tasks(tag=)``, ``pause_tasks``, ``resume_tasks`` and ``remove_tasks`` ask it
        once. This default reads every task (the file store's way); stores with an index
        override it (memory: a dict of tag to ids; SQL: a tag table; Redis: a sorted set)."""
        return [task for task in self.get_all_tasks() if tag in task.tags]

    # -- acting on a tag: one store operation each ---------------------------------------

    def pause_tasks_by_tag(self, tag: str) -> list[Task]:
        """Pause every task with ``tag`` that is not paused (``next_run_time`` becomes
        ``None``) and return those tasks, as now stored. One store operation: the
        memory and file stores do it in one pass under their lock, the SQL store in one
        transaction, the Redis store with one script that writes them all.

        What each task's own write does, this does too: the record is serialized (and
        signed or encrypted) as an update would, the indexes follow; a task another
        scheduler has claimed right now is changed as ``update_task`` would change it. A
        record that cannot be loaded is logged and skipped (never changed, never
        counted); the others are paused. This default does it one ``update_task`` at a
        time, for stores written before it existed."""
        paused: list[Task] = []
        for task in self.get_tasks_by_tag(tag):
            if task.next_run_time is None:
                continue
            task.next_run_time = None
            with contextlib.suppress(TaskLookupError):  # removed meanwhile
                self.update_task(task)
                paused.append(task)
        return paused

    def resume_tasks_by_tag(
        self, tag: str, next_run_time: NextRunTime
    ) -> tuple[list[Task], list[Task]]:
        """Resume every paused task with ``tag``: each gets ``next_run_time(task)``, the
        time its trigger gives from now (the scheduler computes it: the store knows no
        time zone); one whose trigger is finished (``None``) is removed, one for which it
        answers ``False`` is left as it is. Returns (the resumed tasks, the removed ones).
        One store operation, as :meth:`pause_tasks_by_tag` describes (SQL: the times are
        computed in the same transaction that reads and writes the rows)."""
        resumed: list[Task] = []
        removed: list[Task] = []
        for task in self.get_tasks_by_tag(tag):
            if task.next_run_time is not None:
                continue
            when = next_run_time(task)
            if when is False:
                continue
            with contextlib.suppress(TaskLookupError):  # removed meanwhile
                if when is None:
                    self.remove_task(task.id)
                    removed.append(task)
                else:
                    task.next_run_time = when
                    self.update_task(task)
                    resumed.append(task)
        return resumed, removed

    def remove_tasks_by_tag(self, tag: str) -> list[Task]:
        """Delete every task with ``tag`` and return them (as they were stored). One store
        operation, as :meth:`pause_tasks_by_tag` describes. A record that cannot be
        loaded is not deleted (its tags cannot be known; the store contract keeps it for
        the operator), only logged."""
        removed: list[Task] = []
        for task in self.get_tasks_by_tag(tag):
            with contextlib.suppress(TaskLookupError):  # removed meanwhile
                self.remove_task(task.id)
                removed.append(task)
        return removed

    def get_task_page(
        self, search: str = "", paused: bool | None = None, offset: int = 0, limit: int = 50
    ) -> tuple[list[Task], int]:
        """One page of :meth:`get_all_tasks`'s listing and how many tasks match: those
        whose id contains ``search`` (case-insensitive), paused (``True``) or not
        (``False``) or both (``None``), from ``offset``, at most ``limit``. This default
        loads every task; a store that can ask its storage for one page overrides it
        (see :mod:`tickwork.stores._task_page`)."""
        from tickwork.stores._task_page import check_page, filter_page

        check_page(search, paused, offset, limit)
        return filter_page(self.get_all_tasks(), search, paused, offset, limit)

    # -- the scheduler's processing pass --------------------------------------------------

    def acquire_due_tasks(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[Task]:
        """Claim up to ``limit`` due tasks for ``owner`` until ``now + lease``.

        Stores with ``supports_leases`` return only tasks whose claim is free, expired or
        already ``owner``'s, and claim them in one transaction: no other owner gets them
        until ``release_tasks`` or the lease expires. The default (one scheduler per
        store) just returns the due tasks.
        """
        return self.get_due_tasks(now, limit)

    def release_tasks(
        self,
        owner: str,
        updated: Iterable[Task],
        removed: Iterable[str],
        runs: Iterable[tuple[Task, datetime]] = (),
        runs_expire: datetime | None = None,
    ) -> Collection[str]:
        """Finish a claim: store the advanced ``updated`` tasks, delete the ``removed``
        ids (tasks that will never run again) and, in the same transaction, record
        ``runs`` (task, scheduled time) as in progress for ``owner`` until
        ``runs_expire``. A task deleted by someone else in the meantime stays deleted.

        Returns the ids of tasks whose runs must *not* be started: with leases, a task
        whose claim another owner holds now (nothing is written for it: that owner
        decides its runs), or one with a run already recorded for the same time. The
        default writes everything, records nothing and returns an empty collection.
        """
        for task in updated:
            with contextlib.suppress(TaskLookupError):
                self.update_task(task)
        for task_id in removed:
            with contextlib.suppress(TaskLookupError):
                self.remove_task(task_id)
        return ()

    # -- leadership (stores with supports_election) ---------------------------------------

    def elect(self, owner: str, lease: float) -> int | None:
        """Make ``owner`` the leader of the schedulers sharing this store for ``lease``
        seconds, counted by the *store's* clock, or renew its term; return the term's
        generation, or ``None`` while another owner's term runs.

        The generation grows with every new term, whoever holds it: a term that
        expired is never renewed, taking it again starts the next generation. The store
        remembers the term this instance holds (one store instance serves one
        scheduler): while the term runs, :meth:`acquire_due_tasks` for ``owner`` also
        hands out tasks with ``leader_only`` and :meth:`get_next_run_time` counts them;
        without it they are left out. The store checks the term (owner, generation,
        expiry by its own clock) in the same transaction as the claim, so a scheduler
        whose term ended cannot claim a leader-only task, however late it asks (the
        generation is the fencing token). Stores without ``supports_election`` raise
        ``NotImplementedError``."""
        raise NotImplementedError(f"{type(self).__name__} cannot elect a leader")

    def resign(self, owner: str) -> None:
        """End ``owner``'s term now (a graceful shutdown), so that another scheduler is
        elected at its next attempt instead of after the lease. Nothing happens when
        ``owner`` does not lead."""

    def get_leader(self) -> LeaderTerm | None:
        """The term running now, whoever holds it, or ``None`` when none runs (no
        scheduler leads: none stood, or the last term expired or was resigned). For
        operators (the dashboard's fleet page, ``tickwork fleet``): the answer may be stale by the
        time it is read, so never decide a claim with it. Stores without
        ``supports_election`` have no terms: ``None``."""
        return None

    # -- runs in progress (stores with supports_leases) -----------------------------------

    def count_runs(self, task_ids: Collection[str]) -> dict[str, int]:
        """How many runs of each of ``task_ids`` are recorded as in progress, by any
        owner (ids without runs may be left out; pending retries do not count). The default knows of none: the
        executor of the single scheduler counts its own runs."""
        return {}

    def renew_runs(self, owner: str, runs: Collection[RunKey], expires: datetime) -> int:
        """Extend ``owner``'s records of ``runs`` until ``expires``; return how many were
        still ``owner``'s (a record taken over by another scheduler is left alone)."""
        return len(runs)

    def finish_runs(self, owner: str, runs: Collection[RunKey]) -> None:
        """Delete ``owner``'s records of ``runs`` (the runs ended). Records of other
        owners, and unknown runs, are left alone."""

    def take_over_runs(
        self, now: datetime, limit: int, owner: str, expires: datetime
    ) -> list[InProgressRun]:
        """Take over up to ``limit`` run records whose lease expired before ``now``
        (their owner died or lost the store) and pending retries due at ``now``: they
        become ``owner``'s runs in progress until ``expires``, and are returned with the
        task as it was handed over, the previous owner (``""`` for a retry), the attempt
        to make (an abandoned record's attempt + 1, which the record now holds; a
        retry's own) and, for a retry, when it was due. A record whose task cannot be
        loaded is taken over but not returned (it expires again, for a scheduler that
        can load it).

        The default has no records of runs in progress: it hands out the pending
        retries due at ``now`` (removing them)."""
        return self._retries().take_due(now, limit)

    def retry_runs(self, owner: str, retries: Collection[PendingRetry]) -> None:
        """Make each of ``retries`` a pending retry, due at its ``due`` time, kept with
        the task as it was run. With leases, ``owner``'s record of the run (task id and
        run time) becomes the pending retry in one write: it has no owner, holds the
        attempt, and is taken over when due; a record that is no longer ``owner``'s is
        left alone, and one marked for cancelling (:meth:`cancel_runs`) is deleted
        instead (a cancelled run is not tried again). The default keeps pending retries
        in this process's memory."""
        self._retries().add(retries)

    def next_retry_time(self) -> datetime | None:
        """When the earliest pending retry is due (``None``: there is none). A scheduler
        sleeps no longer than that. Stores that are polled (``poll_interval``) may
        return ``None``: their retries are found by the poll."""
        return self._retries().next_due()

    def cancel_runs(self, task_id: str, run_time: datetime | None = None) -> int:
        """Ask for the runs of ``task_id`` (only the one scheduled at ``run_time``, when
        given) to be cancelled: their pending retries are deleted, and, with leases,
        each record of a run in progress is marked, for its owner to find
        (:meth:`cancel_requests`). Returns how many retries were deleted plus how many
        records were marked."""
        return self._retries().remove(task_id, run_time)

    def cancel_requests(self, owner: str) -> list[RunKey]:
        """The runs of ``owner`` in progress whose cancellation was asked for
        (:meth:`cancel_runs`), each returned until its record is finished. The default
        has no records."""
        return []

    def _retries(self) -> PendingRetries:
        """The pending retries kept in this process's memory (default stores only)."""
        kept: PendingRetries | None = getattr(self, "_pending_retries", None)
        if kept is None:
            kept = self._pending_retries = PendingRetries()
        return kept

    def __repr__(self) -> str:
        return f"<{type(self).__name__} alias={self.alias!r}>"


class PendingRetries:
    """Pending retries in this process's memory, by (task id, run time): what the
    stores without records of runs keep by default."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._retries: dict[tuple[str, float], PendingRetry] = {}

    def add(self, retries: Iterable[PendingRetry]) -> None:
        """Keep each retry (replacing one of the same run)."""
        with self._lock:
            for retry in retries:
                self._retries[(retry.task.id, retry.run_time.timestamp())] = retry

    def take_due(self, now: datetime, limit: int) -> list[InProgressRun]:
        """Remove and return up to ``limit`` retries due at ``now``, earliest first."""
        if not self._retries:  # (every pass asks: no lock while there are none)
            return []
        with self._lock:
            due = sorted(
                (retry for retry in self._retries.values() if retry.due <= now),
                key=lambda retry: retry.due,
            )[:limit]
            for retry in due:
                del self._retries[(retry.task.id, retry.run_time.timestamp())]
        return [
            InProgressRun(retry.task, retry.run_time, "", retry.attempt, retry.due) for retry in due
        ]

    def next_due(self) -> datetime | None:
        """The earliest due time, or ``None``."""
        if not self._retries:
            return None
        with self._lock:
            return min((retry.due for retry in self._retries.values()), default=None)

    def remove(self, task_id: str, run_time: datetime | None) -> int:
        """Delete the retries of ``task_id`` (of its run at ``run_time`` only, when
        given); return how many."""
        with self._lock:
            keys = [
                key
                for key in self._retries
                if key[0] == task_id and (run_time is None or key[1] == run_time.timestamp())
            ]
            for key in keys:
                del self._retries[key]
        return len(keys)
