"""Retries: which failed runs are tried again, and when.

The :class:`Retrier` sits between the executors and the event hub (it is the ``emit``
of their :class:`~tickwork.executors.base.ExecutorHost`), so it sees every run's outcome
before any listener does. For the runs it follows — those of tasks with ``retries``, and
every attempt after the first (a retry, or a run taken over from a dead scheduler) — it

* stamps the outcome event with the run's ``attempt`` (executors know nothing of
  attempts: they run what they are sent);
* decides whether a failure (``TASK_ERROR`` or ``TASK_TIMEOUT`` with an exception in the
  task's ``retry_on``, and attempts left) is tried again, after ``retry_delay *
  retry_backoff ** (attempt - 1)`` seconds;
* hands the retry to the :class:`~tickwork.schedulers._runs.RunKeeper` *before* the
  outcome reaches the listeners: on a shared store the keeper then turns the run's
  record into the pending retry in one write, instead of deleting it (a scheduler that
  dies in between leaves the record to expire and be taken over: the retry is never
  lost, and made once);
* reports it: a ``TASK_RETRY`` event and a log line.

It also follows the runs of *spaced* tasks (a fixed delay, a ``cooldown``): their end
goes to the :class:`~tickwork.schedulers._spacing.RunSpacer` before any listener sees it,
so the run keeper deletes a run's record only after the task's next run was moved.

Runs it does not follow cost nothing: while it follows none, no listener is added for
``TASK_EXECUTED``, so executors build no event for a success nobody listens to.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from datetime import datetime, timedelta

from tickwork._run_policy import is_retried, retry_delay_for
from tickwork.clock import Clock
from tickwork.events import (
    TASK_CANCELLED,
    TASK_ERROR,
    TASK_EXECUTED,
    TASK_RETRY,
    TASK_TIMEOUT,
    TaskExecutionEvent,
    TaskRetryEvent,
)
from tickwork.executors.base import run_log_extra
from tickwork.schedulers._events import EventHub
from tickwork.schedulers._runs import RunKeeper
from tickwork.schedulers._spacing import RunSpacer, is_spaced
from tickwork.stores.base import PendingRetry
from tickwork.tasks import Task

__all__ = ["MAX_RETRY_DELAY", "Retrier"]

#: The codes that end a run: the event that removes it from those followed.
_OUTCOMES = TASK_EXECUTED | TASK_ERROR | TASK_TIMEOUT | TASK_CANCELLED
#: The outcomes a retry may follow (a cancelled run is not tried again).
_FAILURES = TASK_ERROR | TASK_TIMEOUT
#: A backoff that grows past this is capped: a retry is never put off further.
MAX_RETRY_DELAY = 7 * 24 * 3600.0

_Key = tuple[str, float]


class Retrier:
    """Follows the runs that may be retried (see the module docstring)."""

    def __init__(
        self, events: EventHub, keeper: RunKeeper, clock: Clock, logger: logging.Logger
    ) -> None:
        self._events = events
        self._keeper = keeper
        #: Told when a run of a spaced task ends (set by the scheduler).
        self.spacer: RunSpacer | None = None
        self._clock = clock
        self._logger = logger
        self._lock = threading.Lock()
        #: The runs followed: (task id, scheduled time as epoch seconds) -> (task, attempt).
        self._flight: dict[_Key, tuple[Task, int]] = {}

    def note(self, task: Task, run_times: list[datetime], attempt: int) -> None:
        """Follow these runs (called before they are handed to the executor) when the
        task has retries or spacing, or this is not a first attempt."""
        if attempt == 1 and not task._profile.policy.retries and not is_spaced(task):
            return
        with self._lock:
            if not self._flight:
                # Outcomes of successes must be built while runs are followed: the
                # event is what ends the following.
                self._events.add(_built, TASK_EXECUTED)
            for run_time in run_times:
                self._flight[(task.id, run_time.timestamp())] = (task, attempt)

    def holds(self, task: Task) -> bool:
        """True when a new first run of the spaced ``task`` must wait: a run of it is
        still followed (the executor frees its ``max_instances`` slot *before* it
        reports the outcome), or the move of its next run time past the spacing is not
        written yet. Without this a pass between those moments started the next run at
        once, ignoring the spacing."""
        with self._lock:
            if any(task_id == task.id for task_id, _ in self._flight):
                return True
            spacer = self.spacer
            return spacer is not None and spacer.pending(task)

    def forget(self, task: Task, run_times: list[datetime]) -> None:
        """Stop following runs that did not start (refused for ``max_instances``)."""
        with self._lock:
            for run_time in run_times:
                self._flight.pop((task.id, run_time.timestamp()), None)
            if not self._flight:
                self._events.remove(_built)

    def emit(self, event: TaskExecutionEvent) -> None:
        """Send an executor's event to the listeners: stamped with its run's attempt,
        after handing a retry to the run keeper when the run is tried again."""
        if not self._flight or not event.code & _OUTCOMES:
            self._events.emit(event)
            return
        spacer = self.spacer
        with self._lock:
            followed = self._flight.pop((event.task_id, event.scheduled_run_time.timestamp()), None)
            if followed is not None and spacer is not None and is_spaced(followed[0]):
                # Under the lock: :meth:`holds` sees the run in flight or its move
                # queued, never neither (the executor freed its slot already).
                spacer.ended(followed[0])
            if not self._flight:
                self._events.remove(_built)
        if followed is None:
            self._events.emit(event)
            return
        task, attempt = followed
        if attempt != 1:
            event = dataclasses.replace(event, attempt=attempt)
        retry = None
        if event.code & _FAILURES and is_retried(task._profile.policy, attempt, event.exception):
            retry = self._retry(task, event, attempt)
        self._events.emit(event)
        if retry is not None:
            self._report(task, event, retry)

    def _retry(self, task: Task, event: TaskExecutionEvent, attempt: int) -> PendingRetry:
        delay = min(retry_delay_for(task._profile.policy, attempt), MAX_RETRY_DELAY)
        retry = PendingRetry(
            task,
            event.scheduled_run_time,
            attempt + 1,
            self._clock.now() + timedelta(seconds=delay),
        )
        self._keeper.retry(task.store_alias or "default", retry)
        return retry

    def _report(self, task: Task, event: TaskExecutionEvent, retry: PendingRetry) -> None:
        run_time = event.scheduled_run_time
        self._logger.warning(
            "run of task %r scheduled at %s failed on attempt %d (%s); attempt %d of %d at %s",
            task.id,
            run_time.isoformat(),
            retry.attempt - 1,
            type(event.exception).__name__,
            retry.attempt,
            task._profile.policy.retries + 1,
            retry.due.isoformat(),
            extra=run_log_extra(task.id, run_time, event.duration),
        )
        if self._events.wants(TASK_RETRY):
            self._events.emit(
                TaskRetryEvent(
                    TASK_RETRY,
                    task.id,
                    event.store,
                    run_time,
                    exception=event.exception,
                    attempt=retry.attempt,
                    retry_at=retry.due,
                )
            )


def _built(event: object) -> None:
    """The listener that makes executors build ``TASK_EXECUTED`` events while runs are
    followed (the retrier reads them before the hub sends them)."""
