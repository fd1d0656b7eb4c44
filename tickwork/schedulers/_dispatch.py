"""The dispatcher: hands planned runs to executors and reports what happened to runs
that did not start (missed, refused for ``max_instances``, not submitted).

It receives the executors by alias and the event hub; it never sees the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from tickwork._run_hook import RunHook
from tickwork.context import Resources, with_context
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
from tickwork.executors.base import BaseExecutor, run_log_extra
from tickwork.schedulers._events import EventHub
from tickwork.schedulers._history import RunRecorder
from tickwork.schedulers._spacing import is_spaced
from tickwork.stores.base import InProgressRun
from tickwork.tasks import Task

if TYPE_CHECKING:
    from tickwork.schedulers._retries import Retrier

__all__ = ["REQUESTED_RUN_GRACE", "Dispatcher"]

#: Seconds a run asked for with ``request_run`` may wait for a scheduler to find it in
#: its store before it counts as missed, when the task's own grace time is shorter.
REQUESTED_RUN_GRACE = 60.0


class Dispatcher:
    """Starts runs and reports every run that does not start: nothing is skipped
    silently (each outcome is a log line and an event). The log records carry the
    ``extra`` fields of every run record (``task_id``, ``run_time``, ``duration`` None:
    see :func:`~tickwork.executors.base.run_log_extra`)."""

    def __init__(
        self,
        executors: Mapping[str, BaseExecutor],
        events: EventHub,
        logger: logging.Logger,
        history: RunRecorder | None = None,
    ) -> None:
        self._executors = executors
        #: Follows the runs that may be retried (set by the scheduler once it exists).
        self.retrier: Retrier | None = None
        #: Wraps each instance before it goes to its executor (tracing); None: off, and
        #: then the whole cost is one attribute check per instance.
        self.run_hook: RunHook | None = None
        self._events = events
        self._logger = logger
        #: Notes every run for the run history (None: the scheduler keeps none).
        self.history = history
        #: The scheduler's resources, for tasks that ask for a TaskContext.
        self.resources = Resources()

    def executor(self, alias: str) -> BaseExecutor | None:
        """The executor called ``alias`` (``None``: no such executor)."""
        return self._executors.get(alias)

    def submit(
        self,
        task: Task,
        run_times: list[datetime],
        raise_max_instances: bool = False,
        attempt: int = 1,
        report_refusal: bool = True,
    ) -> bool:
        """Hand runs to the task's executor and report the outcome as events. Returns
        False when the executor refused them for ``max_instances`` (no run events
        follow then); True otherwise (a failure to submit is reported as ``TASK_ERROR``
        for each run). ``attempt`` numbers the run records (a run taken over from a dead
        scheduler is the next attempt of its run)."""
        history = self.history
        profile = task._profile
        executor = self._executors.get(profile.executor)
        if history is not None:
            # Noted first: a synchronous executor ends the runs inside send_task.
            history.starting(task, run_times, attempt)
        retrier = self.retrier
        if retrier is not None:
            policy = profile.policy
            # (is_spaced(task), inline: this runs per run)
            spaced = task.trigger.spacing is not None or policy.cooldown is not None
            if spaced or attempt != 1 or policy.retries:
                if (
                    spaced
                    and attempt == 1
                    and not raise_max_instances  # (a command such as run_task_now decides)
                    and retrier.holds(task)
                ):
                    # The previous run ended but its spacing is not written yet: held, as
                    # while it runs (see _spacing.py).
                    if history is not None:
                        history.forget(task, run_times, attempt)
                    self.report_held(task, run_times)
                    return False
                retrier.note(task, run_times, attempt)
        try:
            if executor is None:
                raise UnknownAliasError("executor", task.executor, list(self._executors))
            context = profile.context  # (one read per run for tasks without one)
            if context is None and self.run_hook is None:
                executor.send_task(task, run_times)  # (most tasks: no wrapper to build)
            else:
                sent = (
                    task
                    if context is None
                    else with_context(task, context, self.resources, run_times, attempt)
                )
                if self.run_hook is not None:
                    sent = self.run_hook.wrap(sent, run_times, attempt)
                executor.send_task(sent, run_times)
        except MaxInstancesReachedError as exc:
            if history is not None:
                history.forget(task, run_times, attempt)
            if retrier is not None:
                retrier.forget(task, run_times)
            if raise_max_instances:
                if report_refusal:  # (not for a queued run-now: it waits, nothing skipped)
                    self.report_max_instances(task, run_times, exc, attempt)
                raise
            if attempt == 1 and is_spaced(task):
                self.report_held(task, run_times)
            else:
                self.report_max_instances(task, run_times, exc, attempt)
            return False
        except Exception as exc:
            if retrier is not None:  # (its outcome below is not an executor's)
                retrier.forget(task, run_times)
            self._logger.exception(
                "could not submit task %r to executor %r",
                task.id,
                task.executor,
                extra=run_log_extra(task.id, run_times[0]),
            )
            for run_time in run_times:
                self._events.emit(
                    TaskExecutionEvent(
                        TASK_ERROR, task.id, task.store_alias, run_time, exception=exc
                    )
                )
        else:
            events = self._events
            if events.mask & TASK_SUBMITTED:  # (wants(), inline: this runs per run)
                events.emit(
                    TaskSubmissionEvent(TASK_SUBMITTED, task.id, task.store_alias, tuple(run_times))
                )
        return True

    def report_missed(
        self,
        task: Task,
        missed: list[datetime],
        now: datetime,
        why: str | None = None,
        attempt: int = 1,
    ) -> None:
        """Log and report (``TASK_MISSED``) runs that will not start: too late for
        ``mistrigger_grace_time``, or for the reason ``why`` says."""
        reason = why or f"mistrigger_grace_time {task.mistrigger_grace_time}s"
        if self.history is not None:
            self.history.not_started(task, missed, "missed", attempt=attempt)
        for run_time in missed:
            self._logger.warning(
                "run of task %r scheduled at %s was missed by %s (%s)",
                task.id,
                run_time.isoformat(),
                now - run_time,
                reason,
                extra=run_log_extra(task.id, run_time),
            )
            if self._events.wants(TASK_MISSED):
                self._events.emit(
                    TaskExecutionEvent(
                        TASK_MISSED, task.id, task.store_alias, run_time, attempt=attempt
                    )
                )

    def start_due(self, run: InProgressRun, now: datetime) -> bool:
        """Start a pending retry that came due, or a run taken over from a dead
        scheduler, as its next attempt, if still within the task's grace time (counted
        from the retry's due time, or the run's scheduled time); else report it missed.
        Returns whether it was handed to the executor."""
        task, run_time = run.task, run.run_time
        since = run.due if run.due is not None else run_time
        grace = task.mistrigger_grace_time
        if run.attempt == 1 and run.due is not None and grace is not None:
            # A pending first attempt is a run somebody asked for (request_run): it waits
            # for a scheduler's next look at the store (poll and take-over intervals,
            # seconds apart), which a short grace time must not turn into a miss.
            grace = max(grace, REQUESTED_RUN_GRACE)
        if grace is None or (now - since).total_seconds() <= grace:
            return self.submit(task, [run_time], attempt=run.attempt)
        why = (
            f"attempt {run.attempt} was due at {since.isoformat()}, past mistrigger_grace_time "
            f"{grace}s"
        )
        self.report_missed(task, [run_time], now, why, run.attempt)
        return False

    def report_max_instances(
        self, task: Task, run_times: list[datetime], reason: object, attempt: int = 1
    ) -> None:
        """Log and report (``TASK_MAX_INSTANCES``) runs skipped because too many
        instances of the task are running."""
        if self.history is not None:
            self.history.not_started(task, run_times, "max_instances", attempt=attempt)
        self._logger.warning(
            "run of task %r at %s skipped: %s",
            task.id,
            run_times[-1].isoformat(),
            reason,
            extra=run_log_extra(task.id, run_times[-1]),
        )
        if self._events.wants(TASK_MAX_INSTANCES):
            self._events.emit(
                TaskSubmissionEvent(TASK_MAX_INSTANCES, task.id, task.store_alias, tuple(run_times))
            )

    def report_held(self, task: Task, run_times: list[datetime]) -> None:
        """A spaced task (fixed delay, cooldown) came due while a run of it is in
        progress: nothing is skipped (the run's end moves the task's next run time past
        its spacing, see :mod:`~tickwork.schedulers._spacing`), so no event; a DEBUG line."""
        self._logger.debug(
            "task %r due at %s held: a run of it is in progress or just ended (its end sets "
            "the next run)",
            task.id,
            run_times[-1].isoformat(),
            extra=run_log_extra(task.id, run_times[-1]),
        )

    def report_removed(self, alias: str, task_ids: list[str]) -> None:
        """Report tasks the pass deleted because their triggers are finished."""
        for task_id in task_ids:
            self._logger.debug("task %r finished: removed from store %r", task_id, alias)
            if self._events.wants(TASK_REMOVED):
                self._events.emit(TaskEvent(TASK_REMOVED, task_id, alias))
