"""Bookkeeping of the runs a scheduler handed over from shared stores.

A store with leases (see :mod:`tickwork.stores.base`) holds a record of every run in
progress. The :class:`RunKeeper` of a scheduler keeps its own records alive and deletes
each one when its run ends:

* the processing pass calls :meth:`RunKeeper.track` for runs just recorded, before
  handing them to an executor (a synchronous executor may finish them inside the hand-over);
* the executor's ``TASK_EXECUTED`` / ``TASK_ERROR`` event for a tracked run marks it
  finished (:meth:`RunKeeper.finish`);
* a thread of its own deletes finished records at once and renews the others every
  third of the store's lease. It runs only while there is something to track, and it
  also works while the scheduler is paused (paused schedulers make no passes, yet their
  runs go on and must not be taken over).

Store I/O happens on that thread only, never on an event loop (events of ``async def``
tasks arrive on the loop's thread).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from tickwork.clock import Clock
from tickwork.events import TASK_ERROR, TASK_EXECUTED
from tickwork.schedulers._events import EventHub
from tickwork.stores.base import BaseStore

__all__ = ["RunKeeper"]

#: (task id, scheduled time as epoch seconds): the key of a run. Epoch seconds make a
#: run found by an event compare equal whatever time zone its datetime carries.
_Key = tuple[str, float]

#: After a failed store call, wait this long before trying again.
RETRY_DELAY = 1.0

#: How long shutdown waits for the keeper thread.
CLOSE_TIMEOUT = 10.0


class RunKeeper:
    """Tracks the runs in progress of one scheduler, per store alias."""

    def __init__(
        self,
        stores: Mapping[str, BaseStore],
        events: EventHub,
        identity: str,
        clock: Clock,
        logger: logging.Logger,
        before_finish: Callable[[], set[str]] | None = None,
    ) -> None:
        self._stores = stores
        #: Writes the run history, returning the store aliases it could not write (see
        #: _flush); None without history.
        self._before_finish = before_finish
        self._events = events
        self._identity = identity
        self._clock = clock
        self._logger = logger
        self._cond = threading.Condition()
        self._running: dict[str, dict[_Key, datetime]] = {}
        self._finished: dict[str, dict[_Key, datetime]] = {}
        self._renew_at: dict[str, float] = {}  # monotonic time of the next renewal
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._listening = False

    # -- called by the pass and by events -----------------------------------------------------

    def track(self, alias: str, task_id: str, run_times: Iterable[datetime]) -> None:
        """Start keeping the records of these runs alive (they were just written)."""
        if not self._listening:
            self._listening = True
            self._events.add(self._on_event, TASK_EXECUTED | TASK_ERROR)
        with self._cond:
            running = self._running.setdefault(alias, {})
            if not running:  # records just written last a full lease
                self._renew_at[alias] = time.monotonic() + self._renew_every(alias)
            for run_time in run_times:
                running[(task_id, run_time.timestamp())] = run_time
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="tickwork-run-keeper", daemon=True
                )
                self._thread.start()

    def finish(self, alias: str | None, task_id: str, run_times: Iterable[datetime]) -> None:
        """Mark runs ended: their records are deleted soon. Unknown runs are ignored, so
        calling it twice for one run is harmless."""
        with self._cond:
            running = self._running.get(alias or "")
            if not running:
                return
            finished = self._finished.setdefault(alias or "", {})
            for run_time in run_times:
                key = (task_id, run_time.timestamp())
                if key in running:
                    finished[key] = running.pop(key)
            if finished:
                self._cond.notify()

    def flush(self, alias: str) -> None:
        """Delete the records of ``alias``'s ended runs now, on the calling thread (one
        that may do store I/O). The pass calls it after handing runs over, so runs that
        ended at once (a synchronous executor, a quick task) are recorded as finished
        without waiting for the keeper thread."""
        with self._cond:
            runs = dict(self._finished.get(alias, {}))
        if runs:
            self._flush({alias: runs}, retry_later=True)

    def _on_event(self, event: Any) -> None:
        self.finish(event.store, event.task_id, [event.scheduled_run_time])

    # -- the keeper thread -------------------------------------------------------------------

    def _renew_every(self, alias: str) -> float:
        store = self._stores.get(alias)
        return (store.lease_time if store is not None else 10.0) / 3

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._work_due():
                    if not any(self._running.values()) and not any(self._finished.values()):
                        self._thread = None  # nothing to keep alive: a later track() restarts
                        return
                    self._cond.wait(self._seconds_to_renewal())
                if self._stopping:
                    return
                finished = {alias: dict(runs) for alias, runs in self._finished.items() if runs}
                renew = self._renewals_due()
            self._flush(finished)
            self._renew(renew)

    def _work_due(self) -> bool:
        return any(self._finished.values()) or self._seconds_to_renewal() <= 0

    def _seconds_to_renewal(self) -> float:
        now = time.monotonic()
        due = [at for alias, at in self._renew_at.items() if self._running.get(alias)]
        return max(0.0, min(due) - now) if due else RETRY_DELAY

    def _renewals_due(self) -> dict[str, list[_Key]]:
        now = time.monotonic()
        due: dict[str, list[_Key]] = {}
        for alias, at in list(self._renew_at.items()):
            if self._running.get(alias) and at <= now:
                due[alias] = list(self._running[alias])
                self._renew_at[alias] = now + self._renew_every(alias)
        return due

    def _flush(self, finished: dict[str, dict[_Key, datetime]], retry_later: bool = False) -> None:
        """Delete the records of ended runs; on failure they stay queued for a retry
        (after a pause, unless ``retry_later``: then the keeper thread retries).

        The run history is written first: once a run's lease is gone nobody can take the
        run over, so a scheduler dying between the two would leave its history record
        ``running`` for good. A store whose history could not be written keeps its
        leases until it can."""
        if not finished:
            return
        unwritten = self._before_finish() if self._before_finish is not None else set()
        for alias, runs in finished.items():
            store = self._stores.get(alias)
            if alias in unwritten:
                if not retry_later:
                    time.sleep(RETRY_DELAY)  # on the keeper thread only
                continue
            if store is not None:
                try:
                    store.finish_runs(self._identity, [(t, when) for (t, _), when in runs.items()])
                except Exception as exc:
                    self._logger.warning(
                        "could not record %d finished run(s) in store %r (%s); retrying",
                        len(runs),
                        alias,
                        exc,
                    )
                    if not retry_later:
                        time.sleep(RETRY_DELAY)  # on the keeper thread only
                    continue
            with self._cond:
                queued = self._finished.get(alias, {})
                for key in runs:
                    queued.pop(key, None)

    def _renew(self, renew: dict[str, list[_Key]]) -> None:
        for alias, keys in renew.items():
            store = self._stores.get(alias)
            if store is None:  # the store was removed: nothing left to keep alive
                with self._cond:
                    self._running.pop(alias, None)
                continue
            with self._cond:
                runs = [
                    (task_id, self._running[alias][(task_id, ts)])
                    for task_id, ts in keys
                    if (task_id, ts) in self._running.get(alias, {})
                ]
            if not runs:
                continue
            expires = self._clock.now() + timedelta(seconds=store.lease_time)
            try:
                renewed = store.renew_runs(self._identity, runs, expires)
            except Exception as exc:
                self._logger.warning(
                    "could not renew %d run(s) in store %r (%s); retrying in %.0f s",
                    len(runs),
                    alias,
                    exc,
                    RETRY_DELAY,
                )
                with self._cond:
                    self._renew_at[alias] = time.monotonic() + RETRY_DELAY
                continue
            if renewed < len(runs):
                self._logger.warning(
                    "%d run(s) of store %r were taken over by another scheduler: this one "
                    "could not renew them within the %.1f s lease",
                    len(runs) - renewed,
                    alias,
                    store.lease_time,
                )

    # -- shutdown --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the thread and delete the records of runs that ended. Runs still going
        (``shutdown(wait=False)``) keep their records: when those expire, another
        scheduler treats them as abandoned."""
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._cond.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(CLOSE_TIMEOUT)
        with self._cond:
            finished = {alias: dict(runs) for alias, runs in self._finished.items() if runs}
        self._flush(finished)
        with self._cond:
            abandoned = sum(len(runs) for runs in self._running.values())
            self._running.clear()
            self._finished.clear()
            self._renew_at.clear()
            self._thread = None
            self._stopping = False
        if abandoned:
            self._logger.warning(
                "%d run(s) still in progress at shutdown; their records expire and another "
                "scheduler takes them over",
                abandoned,
            )
