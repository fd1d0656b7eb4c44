"""Events a scheduler emits, and the bit-flag constants listeners filter them with.

A listener is any callable taking one event; register it with
``scheduler.add_listener(callback, mask=TASK_EXECUTED | TASK_ERROR)``. Listeners run on
the thread that produced the event, so they must be quick and must not raise (an
exception in a listener is logged and otherwise ignored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tickwork.runs import make_run_id

__all__ = [
    "ALL_EVENTS",
    "ALL_TASKS_REMOVED",
    "EXECUTOR_ADDED",
    "EXECUTOR_REMOVED",
    "LEADERSHIP_CHANGED",
    "SCHEDULER_PAUSED",
    "SCHEDULER_RESUMED",
    "SCHEDULER_SHUTDOWN",
    "SCHEDULER_STARTED",
    "STORE_ADDED",
    "STORE_RECOVERED",
    "STORE_REMOVED",
    "STORE_UNAVAILABLE",
    "TASK_ADDED",
    "TASK_CANCELLED",
    "TASK_ERROR",
    "TASK_EXECUTED",
    "TASK_MAX_INSTANCES",
    "TASK_MISSED",
    "TASK_MODIFIED",
    "TASK_REMOVED",
    "TASK_RETRY",
    "TASK_SET_ASIDE",
    "TASK_SUBMITTED",
    "TASK_TIMEOUT",
    "LeadershipEvent",
    "SchedulerEvent",
    "TaskEvent",
    "TaskExecutionEvent",
    "TaskRetryEvent",
    "TaskSubmissionEvent",
]

SCHEDULER_STARTED = 2**0
SCHEDULER_SHUTDOWN = 2**1
SCHEDULER_PAUSED = 2**2
SCHEDULER_RESUMED = 2**3
EXECUTOR_ADDED = 2**4
EXECUTOR_REMOVED = 2**5
STORE_ADDED = 2**6
STORE_REMOVED = 2**7
ALL_TASKS_REMOVED = 2**8
TASK_ADDED = 2**9
TASK_REMOVED = 2**10
TASK_MODIFIED = 2**11
TASK_EXECUTED = 2**12
TASK_ERROR = 2**13
TASK_MISSED = 2**14
TASK_SUBMITTED = 2**15
TASK_MAX_INSTANCES = 2**16
#: A task whose trigger or run rules raised while the pass planned its runs: it was
#: paused (kept in its store, never deleted) and the others went on. ``TaskEvent`` with
#: the ``exception``; fix the task (``update_task``/``reschedule_task``) and resume it.
TASK_SET_ASIDE = 2**17
#: A store failed (or went past its I/O bound): the scheduler backs off from it and
#: keeps running the other stores. ``SchedulerEvent`` with ``alias`` and ``exception``;
#: sent once per streak of failures.
STORE_UNAVAILABLE = 2**18
#: A store that was unavailable answered again; processing it resumed.
STORE_RECOVERED = 2**19

#: A run went past its task's ``timeout`` (``TaskExecutionEvent``, ``exception`` a
#: :class:`~tickwork.exceptions.RunTimeoutError`): a coroutine was cancelled, a
#: process-pool worker terminated; a thread goes on (it cannot be stopped) and keeps
#: its ``max_instances`` slot until it returns. The run's outcome, instead of
#: ``TASK_EXECUTED`` / ``TASK_ERROR``.
TASK_TIMEOUT = 2**20
#: A failed run will be tried again (``TaskRetryEvent``: the ``attempt`` to be made and
#: ``retry_at``). Sent after the failed attempt's own ``TASK_ERROR`` / ``TASK_TIMEOUT``.
TASK_RETRY = 2**21
#: A run was cancelled (``TaskExecutionEvent``, ``exception`` a
#: :class:`~tickwork.exceptions.RunCancelledError` saying why): the run's outcome.
TASK_CANCELLED = 2**22
#: This scheduler became the leader of a store's fleet, or stopped being it
#: (``LeadershipEvent``: ``alias``, ``leader``, ``generation``); see
#: :doc:`leadership </leadership>`. Leader-only tasks run on the leader only.
LEADERSHIP_CHANGED = 2**23
ALL_EVENTS = 2**24 - 1


@dataclass(frozen=True, slots=True)
class SchedulerEvent:
    """Something happened to the scheduler itself (or to one of its stores/executors).

    ``alias`` names the store or executor for ``STORE_*`` / ``EXECUTOR_*`` events;
    ``exception`` is the store's error for ``STORE_UNAVAILABLE``.
    """

    code: int
    alias: str | None = None
    exception: BaseException | None = None


@dataclass(frozen=True, slots=True)
class LeadershipEvent:
    """This scheduler (``identity``) became the leader of the schedulers sharing store
    ``alias`` (``leader`` True) or stopped being it (False). ``generation`` numbers the
    term, across the whole fleet: a later term has a larger one."""

    code: int
    alias: str
    leader: bool
    generation: int
    identity: str


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """Something happened to one task: added, modified, removed, set aside
    (``TASK_SET_ASIDE`` carries the ``exception`` that made the pass set it aside)."""

    code: int
    task_id: str
    store: str | None = None
    exception: BaseException | None = None


@dataclass(frozen=True, slots=True)
class TaskSubmissionEvent:
    """Runs of a task were handed to an executor (``TASK_SUBMITTED``) or refused by it
    (``TASK_MAX_INSTANCES``)."""

    code: int
    task_id: str
    store: str | None
    scheduled_run_times: tuple[datetime, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class TaskExecutionEvent:
    """One run of a task finished (``TASK_EXECUTED``), failed (``TASK_ERROR``) or was
    skipped because it was too late (``TASK_MISSED``).

    ``exception`` and ``traceback`` are set for ``TASK_ERROR``; ``return_value`` for
    ``TASK_EXECUTED``; ``duration`` (seconds) for a run that ran, ``None`` for one that
    never started. ``attempt`` counts the tries of the run (1 for the first), and
    :attr:`run_id` names the attempt as its run record does (:mod:`tickwork.runs`).
    """

    code: int
    task_id: str
    store: str | None
    scheduled_run_time: datetime
    return_value: Any = None
    exception: BaseException | None = None
    traceback: str | None = None
    duration: float | None = None
    attempt: int = 1

    @property
    def run_id(self) -> str:
        """The id of this attempt's run record: ``"<task id>@<UTC time>#<attempt>"``."""
        return make_run_id(self.task_id, self.scheduled_run_time, self.attempt)


@dataclass(frozen=True, slots=True)
class TaskRetryEvent(TaskExecutionEvent):
    """``TASK_RETRY``: the run scheduled at ``scheduled_run_time`` failed and is tried
    again at ``retry_at`` as attempt ``attempt``; ``exception`` is the failure."""

    retry_at: datetime | None = None
