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
  runs go on and must not be taken over);
* a run to be tried again (:meth:`RunKeeper.retry`, from the
  :class:`~tickwork.schedulers._retries.Retrier`) is written as a pending retry
  (``store.retry_runs``) instead of being deleted: for a tracked run, in place of its
  record; for a store without records, as the store keeps retries;
* at each renewal it asks the store for requests to cancel its runs (made by
  ``cancel_run`` on any scheduler of the fleet) and hands them to ``on_cancel``.

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
from tickwork.events import TASK_CANCELLED, TASK_ERROR, TASK_EXECUTED, TASK_TIMEOUT
from tickwork.schedulers._events import EventHub
from tickwork.stores.base import BaseStore, PendingRetry, RunKey

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
        on_retry: Callable[[str, datetime], None] | None = None,
        on_cancel: Callable[[list[RunKey]], None] | None = None,
    ) -> None:
        self._stores = stores
        #: Told (store alias, due time) when a pending retry was written.
        self._on_retry = on_retry
        #: Given the runs whose cancellation another scheduler asked for.
        self._on_cancel = on_cancel
        #: Tracked runs to be written as pending retries when they finish, by alias.
        self._retry_for: dict[str, dict[_Key, PendingRetry]] = {}
        #: Retries of untracked runs (stores without records), to be written.
        self._retries_out: dict[str, list[PendingRetry]] = {}
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
            self._events.add(
                self._on_event, TASK_EXECUTED | TASK_ERROR | TASK_TIMEOUT | TASK_CANCELLED
            )
        with self._cond:
            running = self._running.setdefault(alias, {})
            if not running:  # records just written last a full lease
                self._renew_at[alias] = time.monotonic() + self._renew_every(alias)
            for run_time in run_times:
                running[(task_id, run_time.timestamp())] = run_time
            self._ensure_thread()

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

    def retry(self, alias: str, retry: PendingRetry) -> None:
        """Write ``retry`` as a pending retry of store ``alias``: for a tracked run, in
        place of deleting its record when it finishes (call this before the run is
        marked finished); otherwise on the keeper's thread, soon."""
        key = (retry.task.id, retry.run_time.timestamp())
        with self._cond:
            if key in self._running.get(alias, {}):
                self._retry_for.setdefault(alias, {})[key] = retry
                return
            self._retries_out.setdefault(alias, []).append(retry)
            self._ensure_thread()
            self._cond.notify()

    def _ensure_thread(self) -> None:
        """Start the keeper thread unless it runs (call with the condition held)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="tickwork-run-keeper", daemon=True
            )
            self._thread.start()

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
                retries, self._retries_out = self._retries_out, {}
            self._write_retries(retries)
            self._flush(finished)
            self._renew(renew)

    def _work_due(self) -> bool:
        return (
            any(self._finished.values())
            or any(self._retries_out.values())
            or self._seconds_to_renewal() <= 0
        )

    def _write_retries(self, retries: dict[str, list[PendingRetry]], wait: bool = True) -> None:
        """Write pending retries of untracked runs; those that fail are queued again
        (after a pause on the keeper's thread, unless ``wait`` is False)."""
        for alias, pending in retries.items():
            store = self._stores.get(alias)
            if store is None:
                self._logger.warning(
                    "store %r was removed: %d pending retry(ies) dropped", alias, len(pending)
                )
                continue
            try:
                store.retry_runs(self._identity, pending)
            except Exception as exc:
                self._logger.warning(
                    "could not record %d pending retry(ies) in store %r (%s); trying again",
                    len(pending),
                    alias,
                    exc,
                )
                with self._cond:
                    self._retries_out.setdefault(alias, []).extend(pending)
                if wait:
                    time.sleep(RETRY_DELAY)
                continue
            self._retried(alias, pending)

    def _retried(self, alias: str, written: list[PendingRetry]) -> None:
        if self._on_retry is not None and written:
            self._on_retry(alias, min(retry.due for retry in written))

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
            retries: list[PendingRetry] = []
            if store is not None:
                with self._cond:
                    marked = self._retry_for.get(alias, {})
                    retries = [marked[key] for key in runs if key in marked]
                ended = [(t, when) for (t, ts), when in runs.items() if (t, ts) not in marked]
                try:
                    if retries:
                        store.retry_runs(self._identity, retries)
                    store.finish_runs(self._identity, ended)
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
                marked = self._retry_for.get(alias, {})
                for key in runs:
                    queued.pop(key, None)
                    marked.pop(key, None)
            self._retried(alias, retries)

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
            self._check_cancels(alias, store)
            if renewed < len(runs):
                self._logger.warning(
                    "%d run(s) of store %r were taken over by another scheduler: this one "
                    "could not renew them within the %.1f s lease",
                    len(runs) - renewed,
                    alias,
                    store.lease_time,
                )

    def _check_cancels(self, alias: str, store: BaseStore) -> None:
        """Hand the requests to cancel this scheduler's runs to ``on_cancel``."""
        if self._on_cancel is None:
            return
        try:
            requested = store.cancel_requests(self._identity)
        except Exception as exc:
            self._logger.warning("could not read cancel requests of store %r (%s)", alias, exc)
            return
        if requested:
            self._on_cancel(requested)

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
            retries, self._retries_out = self._retries_out, {}
        self._write_retries(retries, wait=False)
        self._flush(finished)
        with self._cond:
            abandoned = sum(len(runs) for runs in self._running.values())
            self._running.clear()
            self._finished.clear()
            self._retry_for.clear()
            unwritten = sum(len(pending) for pending in self._retries_out.values())
            self._retries_out.clear()
            self._renew_at.clear()
            self._thread = None
            self._stopping = False
        if abandoned:
            self._logger.warning(
                "%d run(s) still in progress at shutdown; their records expire and another "
                "scheduler takes them over",
                abandoned,
            )
        if unwritten:
            self._logger.warning(
                "%d pending retry(ies) could not be recorded before shutdown: they are lost",
                unwritten,
            )
