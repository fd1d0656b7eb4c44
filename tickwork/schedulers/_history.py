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
import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from tickwork.clock import Clock
from tickwork.events import TASK_EXECUTED, TaskExecutionEvent
from tickwork.exceptions import ConfigurationError
from tickwork.runs import RunRecord, make_run_id
from tickwork.runs.base import RunLog, newest_first
from tickwork.stores.base import BaseStore
from tickwork.tasks import Task

__all__ = ["DEFAULT_RUN_HISTORY", "RunRecorder", "check_run_history"]

#: Retention when the scheduler is not told otherwise: a week, and 100 runs per task.
DEFAULT_RUN_HISTORY: dict[str, float | int | None] = {"max_age": 7 * 86400.0, "max_per_task": 100}

#: Seconds between flushes of the buffer while runs are being noted.
FLUSH_EVERY = 0.5
#: Seconds between retention passes over the run logs.
PRUNE_EVERY = 60.0
#: Past this many buffered runs per store (its log failing for long), the oldest finished
#: ones are dropped, with a warning: memory must stay bounded.
MAX_BUFFERED = 100_000

#: A buffered run: [task id, task name, scheduled time, outcome, started at, finished
#: at, duration, attempt, error, traceback, executor] (see RunRecord).
_Note = list[Any]
_Key = tuple[str, float, int]


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
    docstring). ``run_log`` finds the log of a store alias (None: the store is gone)."""

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
        #: Per store alias, the runs noted and not yet written, by (task, time, attempt).
        self._buffer: dict[str, dict[_Key, _Note]] = {}
        #: Runs started and not yet ended: their store and attempt, by (task id, time).
        self._running: dict[tuple[str, float], tuple[str, int]] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._next_prune = 0.0
        self._warned_full: set[str] = set()

    # -- noting runs (the hot path: appends only) ---------------------------------------------

    def starting(self, task: Task, run_times: Iterable[datetime], attempt: int = 1) -> None:
        """Runs of ``task`` are about to be handed to its executor."""
        alias = task.store_alias or "default"
        now = self._clock.now()
        name, executor = task.name, task._profile.executor
        with self._lock:
            buffer = self._buffer.setdefault(alias, {})
            running = self._running
            for run_time in run_times:
                stamp = run_time.timestamp()
                buffer[(task.id, stamp, attempt)] = [
                    task.id, name, run_time, "running", now, None, None, attempt, None, None, executor
                ]  # fmt: skip
                running[(task.id, stamp)] = (alias, attempt)
        self._ensure_thread()

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
        now = self._clock.now()
        with self._lock:
            buffer = self._buffer.setdefault(alias, {})
            for run_time in run_times:
                stamp = run_time.timestamp()
                key = (task.id, stamp, attempt)
                self._running.pop((task.id, stamp), None)
                buffer[key] = [
                    task.id, task.name, run_time, outcome, None, now, None, attempt, error, None,
                    task._profile.executor,
                ]  # fmt: skip
        self._ensure_thread()

    def finished(self, event: TaskExecutionEvent) -> None:
        """A listener for ``TASK_EXECUTED`` and ``TASK_ERROR``: the run's end."""
        stamp = event.scheduled_run_time.timestamp()
        with self._lock:
            where = self._running.pop((event.task_id, stamp), None)
            if where is None:
                return  # not a run this recorder saw start (a store without history)
            alias, attempt = where
            note = self._buffer.setdefault(alias, {}).get((event.task_id, stamp, attempt))
            if note is None:  # its start was written already: a note of its end alone,
                # whose name and start _records takes from the written record
                note = [event.task_id, None, event.scheduled_run_time, "running",
                        None, None, None, attempt, None, None, None]  # fmt: skip
                self._buffer[alias][(event.task_id, stamp, attempt)] = note
            if event.code == TASK_EXECUTED:
                note[3] = "success"
            else:
                exc = event.exception
                note[3] = "cancelled" if _is_cancellation(exc) else "error"
                note[8] = _describe(exc)
                note[9] = event.traceback
            note[5] = self._clock.now()
            note[6] = event.duration
        self._ensure_thread()

    def forget(self, task: Task, run_times: Iterable[datetime]) -> None:
        """Runs noted as starting that never reached the executor (refused)."""
        with self._lock:
            buffer = self._buffer.get(task.store_alias or "default", {})
            for run_time in run_times:
                stamp = run_time.timestamp()
                where = self._running.pop((task.id, stamp), None)
                if where is not None:
                    buffer.pop((task.id, stamp, where[1]), None)

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
            if store is not None:
                found.extend(store.run_log.query(task_id, outcome, since, limit))
        found.sort(key=newest_first, reverse=True)
        return found[:limit]

    # -- writing --------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything buffered to the run logs (on the calling thread). A store whose
        log fails keeps its notes for the next flush."""
        with self._lock:
            taken = {alias: notes for alias, notes in self._buffer.items() if notes}
            for alias in taken:
                self._buffer[alias] = {}
        for alias, notes in taken.items():
            store = self._stores.get(alias)
            if store is None:
                continue  # the store was removed: its runs have nowhere to go
            try:
                store.run_log.write(self._records(store.run_log, notes.values()))
            except Exception as exc:
                self._logger.warning(
                    "could not write %d run record(s) to store %r (%s: %s); retrying",
                    len(notes),
                    alias,
                    type(exc).__name__,
                    exc,
                )
                self._requeue(alias, notes)

    def _records(self, log: RunLog, notes: Iterable[_Note]) -> list[RunRecord]:
        records = []
        for note in notes:
            task_id, name, run_time, outcome, started, finished, duration, attempt = note[:8]
            run_id = make_run_id(task_id, run_time, attempt)
            executor = note[10]
            if name is None:  # its start was written already: keep what that said
                earlier = log.get(run_id)
                name = earlier.task_name if earlier is not None else task_id
                started = earlier.started_at if earlier is not None else None
                executor = earlier.executor if earlier is not None else None
            records.append(
                RunRecord(
                    run_id=run_id,
                    task_id=task_id,
                    task_name=name,
                    scheduled_run_time=run_time,
                    outcome=outcome,
                    started_at=started,
                    finished_at=finished,
                    duration=duration,
                    attempt=attempt,
                    error=note[8],
                    traceback=note[9],
                    scheduler=self._identity,
                    executor=executor,
                )
            )
        return records

    def _requeue(self, alias: str, notes: dict[_Key, _Note]) -> None:
        with self._lock:
            buffer = self._buffer.setdefault(alias, {})
            for key, note in notes.items():
                buffer.setdefault(key, note)  # (a newer note of the same run wins)
            excess = len(buffer) - MAX_BUFFERED
            if excess > 0:
                for key in [k for k, n in buffer.items() if n[3] != "running"][:excess]:
                    del buffer[key]
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

    def _ensure_thread(self) -> None:
        if self._thread is None:
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


def _describe(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _is_cancellation(exc: BaseException | None) -> bool:
    return isinstance(exc, asyncio.CancelledError)
