"""Run history: a record of every run in the run log of the task's store.

The :class:`RunRecorder` notes each run as it starts and as it ends, and each run that
never starts (missed, refused for ``max_instances``). It keeps the notes in a buffer and
writes them to the stores' run logs in batches, from a thread of its own: the pass and
the executors only append to a dict (a run that ends before the next flush costs one
record written, not two), and a slow database never holds up a run.

What the buffer holds per run is a plain list, turned into a
:class:`~tickwork.runs.RunRecord` only when written: building a frozen dataclass per run
on the hot path would cost more than the run's own bookkeeping.

Retention (``run_history={"max_age": ..., "max_per_task": ...}``) is applied by the same
thread, every :data:`PRUNE_EVERY` seconds, in the backends' own bounded batches.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from tickwork.clock import Clock
from tickwork.events import TASK_CANCELLED, TASK_EXECUTED, TASK_TIMEOUT, TaskExecutionEvent
from tickwork.exceptions import ConfigurationError, StoreUnavailableError, TickworkError
from tickwork.runs import RunRecord, make_run_id
from tickwork.runs.base import newest_first
from tickwork.stores.base import BaseStore
from tickwork.tasks import Task

__all__ = ["DEFAULT_RUN_HISTORY", "RunRecorder", "check_run_history"]

#: ``_record(values)`` builds a RunRecord from a tuple of its fields, in C (a NamedTuple's
#: own constructor is Python code and matches keywords).
_record: Callable[[tuple[Any, ...]], RunRecord] = functools.partial(tuple.__new__, RunRecord)

#: Retention when the scheduler is not told otherwise: a week, and 100 runs per task.
DEFAULT_RUN_HISTORY: dict[str, float | int | None] = {"max_age": 7 * 86400.0, "max_per_task": 100}

#: Seconds between flushes of the buffer while runs are being noted.
FLUSH_EVERY = 0.5
#: Records built and written at a time by a flush (see flush: the loop breathes between).
WRITE_CHUNK = 500
#: Seconds between retention passes over the run logs.
PRUNE_EVERY = 60.0
#: Past this many buffered runs per store (its log failing for long), the oldest finished
#: ones are dropped, with a warning: memory must stay bounded.
MAX_BUFFERED = 100_000

#: A run to write: (task, scheduled time, outcome, started at, duration, attempt, error,
#: traceback); a plain tuple, turned into a RunRecord on the writer's thread.
_Note = tuple[Task, datetime, str, datetime | None, float | None, int, str | None, str | None]
#: A run in progress: (store alias, attempt, task, started at, whether its running record
#: was written, scheduled time).
_Started = tuple[str, int, Task, datetime, bool, datetime]


def check_run_history(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ``run_history`` keyword, checked: ``None`` (keep no history) or a dict with
    ``max_age`` (seconds or None) and ``max_per_task`` (a count or None)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"run_history must be a dict with max_age and max_per_task, or None, got {value!r}"
        )
    unknown = set(value) - set(DEFAULT_RUN_HISTORY)
    if unknown:
        raise ConfigurationError(
            f"unknown run_history key(s) {sorted(unknown)}; known: {sorted(DEFAULT_RUN_HISTORY)}"
        )
    settings = {**DEFAULT_RUN_HISTORY, **value}
    age, count = settings["max_age"], settings["max_per_task"]
    if age is not None and (
        isinstance(age, bool) or not isinstance(age, int | float) or not 0 < age < math.inf
    ):
        raise ConfigurationError(f"run_history max_age must be seconds > 0 or None, got {age!r}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ConfigurationError(
            f"run_history max_per_task must be an integer >= 1 or None, got {count!r}"
        )
    return settings


class RunRecorder:
    """Notes runs and writes them to the run logs of the stores (see the module
    docstring).

    The hot path is two small steps per run: :meth:`starting` puts one tuple in
    ``_running``; :meth:`finished` moves it, with its outcome, to the store's list of
    ended runs. A flush writes the ended runs, and a ``running`` record for each run
    still going that has none yet: a run that starts and ends between two flushes costs
    one record, built on the writer's thread."""

    def __init__(
        self,
        stores: Mapping[str, BaseStore],
        settings: dict[str, Any],
        identity: str,
        clock: Clock,
        logger: logging.Logger,
    ) -> None:
        self._stores = stores
        self.settings = settings
        self._identity = identity
        self._clock = clock
        self._logger = logger
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        #: Runs started and not ended, by (task id, scheduled timestamp); see _Started.
        #: By (task id, scheduled time as epoch seconds, attempt): a retry due at once
        #: may start before the failed attempt's end is noted.
        self._running: dict[tuple[str, float, int], _Started] = {}
        #: Per store alias, the records to write (ended runs, runs that never started).
        self._ended: dict[str, list[_Note]] = {}
        #: The keys of the runs started since the last flush: the flush looks at these,
        #: not at every run in progress (a burst leaves thousands in progress).
        self._new: list[tuple[str, float, int]] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._next_prune = 0.0
        self._warned_full: set[str] = set()

    # -- noting runs (the hot path) ---------------------------------------------------------------

    def starting(self, task: Task, run_times: Iterable[datetime], attempt: int = 1) -> None:
        """Runs of ``task`` are about to be handed to its executor."""
        alias, now, task_id = task.store_alias or "default", self._clock.now(), task.id
        with self._lock:
            running, new = self._running, self._new
            for run_time in run_times:
                key = (task_id, run_time.timestamp(), attempt)
                running[key] = (alias, attempt, task, now, False, run_time)
                new.append(key)
        if self._thread is None:
            self._start_thread()

    def finished(self, event: TaskExecutionEvent) -> None:
        """A listener for the outcomes of runs (``TASK_EXECUTED``, ``TASK_ERROR``,
        ``TASK_TIMEOUT``, ``TASK_CANCELLED``): the run's end."""
        run_time = event.scheduled_run_time
        code = event.code
        if code == TASK_EXECUTED:
            outcome, error, text = "success", None, None
        else:
            exc = event.exception
            if code == TASK_TIMEOUT:
                outcome = "timeout"
            elif code == TASK_CANCELLED or isinstance(exc, asyncio.CancelledError):
                outcome = "cancelled"
            else:
                outcome = "error"
            error, text = _describe(exc), event.traceback
        # One hold of the lock: the run moves from in progress to ended at once, so the
        # writer thread never sees it in neither (and ends, leaving it unwritten).
        with self._lock:
            started = self._running.pop((event.task_id, run_time.timestamp(), event.attempt), None)
            if started is None:
                return  # not a run this recorder saw start (a store without history)
            alias, attempt, task, started_at = started[:4]
            self._ended.setdefault(alias, []).append(
                (task, run_time, outcome, started_at, event.duration, attempt, error, text)
            )

    def not_started(
        self,
        task: Task,
        run_times: Iterable[datetime],
        outcome: str,
        error: str | None = None,
        attempt: int = 1,
    ) -> None:
        """Runs of ``task`` that will not run (``"missed"``, ``"max_instances"``), or an
        attempt given up for ``error`` (a run abandoned by a dead scheduler)."""
        alias = task.store_alias or "default"
        with self._lock:
            ended = self._ended.setdefault(alias, [])
            for run_time in run_times:
                self._running.pop((task.id, run_time.timestamp(), attempt), None)
                ended.append((task, run_time, outcome, None, None, attempt, error, None))
        if self._thread is None:
            self._start_thread()

    def forget(self, task: Task, run_times: Iterable[datetime], attempt: int = 1) -> None:
        """Runs noted as starting that never reached the executor (refused)."""
        with self._lock:
            for run_time in run_times:
                self._running.pop((task.id, run_time.timestamp(), attempt), None)

    # -- reading --------------------------------------------------------------------------------

    def query(
        self,
        aliases: Iterable[str],
        task_id: str | None,
        outcome: str | None,
        since: datetime | None,
        limit: int,
    ) -> list[RunRecord]:
        """Records of the stores ``aliases``, newest first (what is buffered is written
        first, so a scheduler sees its own latest runs)."""
        self.flush()
        found: list[RunRecord] = []
        for alias in aliases:
            store = self._stores.get(alias)
            if store is None:
                continue
            try:
                found.extend(store.run_log.query(task_id, outcome, since, limit))
            except TickworkError:
                raise
            except Exception as exc:  # a driver's own error: say which store, and why
                raise StoreUnavailableError(
                    f"store {alias!r}: could not read its run history ({type(exc).__name__}: {exc})"
                ) from exc
        found.sort(key=newest_first, reverse=True)
        return found[:limit]

    # -- writing --------------------------------------------------------------------------------

    def flush(self) -> set[str]:
        """Write what was noted to the run logs (on the calling thread): ended runs, and
        a ``running`` record for each run still going that has none yet. A store whose
        log fails keeps its notes for the next flush; the aliases of those stores are
        returned."""
        failed: set[str] = set()
        now = self._clock.now()
        with self._lock:
            ended, self._ended = self._ended, {}
            new, self._new = self._new, []
            starts: dict[str, list[_Note]] = {}
            running = self._running
            for key in new:
                started = running.get(key)
                if started is not None and not started[4]:  # (still going, unwritten)
                    alias, attempt, task, started_at, _, run_time = started
                    running[key] = (alias, attempt, task, started_at, True, run_time)
                    starts.setdefault(alias, []).append(
                        (task, run_time, "running", started_at, None, attempt, None, None)
                    )
        for alias in set(ended) | set(starts):
            # Starts first: an end noted later for the same run must win the write.
            notes = starts.get(alias, []) + ended.get(alias, [])
            store = self._stores.get(alias)
            if store is None:
                # The store was removed: its runs have nowhere to go, which is said.
                self._logger.warning(
                    "%d run record(s) of store %r not written: the store was removed",
                    len(notes),
                    alias,
                )
                continue
            try:
                for first in range(0, len(notes), WRITE_CHUNK):
                    if first:
                        # Let the other threads (the event loop above all) have the GIL:
                        # a burst's thousands of records are built in one flush.
                        time.sleep(0)
                    store.run_log.write(self._records(notes[first : first + WRITE_CHUNK], now))
            except Exception as exc:
                self._logger.warning(
                    "could not write %d run record(s) to store %r (%s: %s); retrying",
                    len(notes),
                    alias,
                    type(exc).__name__,
                    exc,
                )
                self._requeue(alias, ended.get(alias, []), starts.get(alias, []))
                failed.add(alias)
        return failed

    def _records(self, notes: Iterable[_Note], now: datetime) -> list[RunRecord]:
        identity = self._identity
        records = []
        for task, run_time, outcome, started, duration, attempt, error, text in notes:
            if outcome == "running":
                finished = None
            elif started is not None and duration is not None:
                # (days, seconds) positionally: a keyword costs timedelta's slow
                # argument parsing, once per record.
                finished = started + timedelta(0, duration)
            else:
                finished = now
            # Positionally, in RunRecord's field order: this runs once per run.
            records.append(
                _record(
                    (
                        make_run_id(task.id, run_time, attempt),
                        task.id,
                        task.name,
                        run_time,
                        outcome,
                        started,
                        finished,
                        duration,
                        attempt,
                        error,
                        text,
                        identity,
                        task._profile.executor,
                    )
                )
            )
        return records

    def _requeue(self, alias: str, ended: list[_Note], starts: list[_Note]) -> None:
        with self._lock:
            pending = self._ended.setdefault(alias, [])
            pending[:0] = ended
            for task, run_time, _, _, _, attempt, *_ in starts:  # written later
                key = (task.id, run_time.timestamp(), attempt)
                started = self._running.get(key)
                if started is not None:
                    self._running[key] = (*started[:4], False, started[5])
                    self._new.append(key)
            excess = len(pending) - MAX_BUFFERED
            if excess > 0:
                del pending[:excess]
                if alias not in self._warned_full:
                    self._warned_full.add(alias)
                    self._logger.warning(
                        "store %r: its run log has failed for long; %d run record(s) "
                        "dropped to keep the buffer under %d",
                        alias,
                        excess,
                        MAX_BUFFERED,
                    )

    def prune(self) -> None:
        """Apply the retention to every store's run log."""
        now = self._clock.now()
        age, count = self.settings["max_age"], self.settings["max_per_task"]
        for alias, store in list(self._stores.items()):
            try:
                store.run_log.prune(now, age, count)
            except Exception as exc:
                self._logger.warning("could not prune the run log of store %r: %s", alias, exc)

    # -- the writer thread ----------------------------------------------------------------------

    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(
                    target=self._loop, name="tickwork-run-history", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        monotonic = time.monotonic
        while True:
            with self._lock:
                self._wake.wait(FLUSH_EVERY)
                if self._stopping:
                    return
            self.flush()
            if monotonic() >= self._next_prune:
                self._next_prune = monotonic() + PRUNE_EVERY
                self.prune()
            with self._lock:
                # Nothing in progress and nothing to write: the thread ends (the next run
                # starts another), so an idle scheduler, or one dropped without a
                # shutdown, keeps no thread waking twice a second. Retention waits for
                # the next run.
                if not (self._running or self._new or any(self._ended.values())):
                    self._thread = None
                    return

    def close(self) -> None:
        """Stop the thread and write what is buffered (shutdown, before the stores close).
        Runs still going keep their ``running`` record; their end is not written by this
        scheduler any more (a shared store's take-over ends it as abandoned)."""
        with self._lock:
            thread, self._stopping = self._thread, True
            self._wake.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
        self.flush()
        with self._lock:
            self._thread, self._stopping = None, False
            self._running.clear()
            self._new.clear()


def _describe(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
