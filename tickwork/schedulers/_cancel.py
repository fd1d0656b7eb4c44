"""Cancelling runs: here, in a store's pending retries, and on other schedulers.

A run is cancelled where it runs. The :class:`Canceller` asks this scheduler's executors
first (a coroutine is cancelled, a process-pool worker terminated; a thread cannot be
stopped, which is said in the log), then every store: a store deletes the run's pending
retries and, when shared, marks its record of the run, so the scheduler running it finds
the request when it next renews its records (every third of the store's
``lease_time``) and cancels it there (:meth:`Canceller.requested`, called by the
:class:`~tickwork.schedulers._runs.RunKeeper`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import datetime

from tickwork.executors.base import BaseExecutor
from tickwork.stores.base import BaseStore, RunKey

__all__ = ["Canceller"]


class Canceller:
    """Cancels runs (see the module docstring); receives the executors and stores by
    alias, never the scheduler."""

    def __init__(
        self,
        executors: Mapping[str, BaseExecutor],
        stores: Mapping[str, BaseStore],
        identity: str,
        logger: logging.Logger,
    ) -> None:
        self._executors = executors
        self._stores = stores
        self._identity = identity
        self._logger = logger
        self._lock = threading.Lock()
        #: Requests from the fleet already acted on (a record keeps its mark until the
        #: run ends, and is read again at every renewal).
        self._handled: set[tuple[str, float]] = set()

    def cancel(self, task_id: str, run_time: datetime | None, reason: str) -> int:
        """Cancel the runs of ``task_id`` (the one scheduled at ``run_time`` only, when
        given) wherever they run, and its pending retries; return how many were
        cancelled here, deleted, or marked for the scheduler running them."""
        here = self._cancel_here(task_id, run_time, reason)
        elsewhere = 0
        for alias, store in list(self._stores.items()):
            try:
                marked = store.cancel_runs(task_id, run_time)
            except Exception as exc:
                self._logger.warning(
                    "could not ask store %r to cancel runs of task %r (%s)", alias, task_id, exc
                )
                continue
            # A shared store also marks the records of the runs just cancelled here.
            elsewhere += max(marked - here, 0) if store.supports_leases else marked
        if here + elsewhere:
            self._logger.info(
                "cancelled %d run(s) of task %r here, and %d pending retry(ies) or run(s) "
                "on other schedulers (%s)",
                here,
                task_id,
                elsewhere,
                reason,
            )
        return here + elsewhere

    def requested(self, runs: list[RunKey]) -> None:
        """Cancel the runs another scheduler asked to cancel (from the run keeper)."""
        for task_id, run_time in runs:
            key = (task_id, run_time.timestamp())
            with self._lock:
                if key in self._handled:
                    continue
                self._handled.add(key)
                if len(self._handled) > 10_000:  # (marks of long-gone runs)
                    self._handled = {key}
            self._cancel_here(task_id, run_time, "cancelled on request of another scheduler")

    def _cancel_here(self, task_id: str, run_time: datetime | None, reason: str) -> int:
        cancelled = 0
        active = False
        for alias, executor in list(self._executors.items()):
            try:
                cancelled += executor.cancel_run(task_id, run_time, reason)
            except Exception:
                self._logger.exception(
                    "executor %r failed to cancel runs of task %r", alias, task_id
                )
            active = active or task_id in executor.active_task_ids()
        if not cancelled and active:
            self._logger.warning(
                "run(s) of task %r are active in %s but cannot be cancelled (a thread "
                "cannot be stopped); they go on",
                task_id,
                self._identity,
            )
        return cancelled
