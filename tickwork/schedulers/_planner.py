"""The run rules, in one place: which runs of a due task start now, which are too late,
and when the task runs next.

Every path that decides about runs asks the :class:`Planner`: the pass over a store of
this scheduler, the pass over a store a fleet shares, a run taken over from a dead
scheduler, and a store taken over under ``lock_path``. It does no I/O and sends no
events; it reads a task's rules (``coalesce``, ``mistrigger_grace_time``,
``max_instances``) and its trigger, nothing else.

Speed: :meth:`Planner.decide` runs once per due task. It reads the rules straight from
the task's shared profile (``task._profile``: the properties cost a Python frame each on
3.11) and answers the common case, one due run, without building lists.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from tickwork.tasks import Task
from tickwork.triggers.shutdown import ShutdownTrigger
from tickwork.utils import is_fixed_offset

__all__ = ["MAX_CATCH_UP", "Planner", "RunPlan", "write_back"]

#: Without ``coalesce``, at most this many overdue fire times of one task are run per
#: pass (a 1 ms interval after a day of downtime would otherwise build a list of 86
#: million runs); the rest come due in the following passes.
MAX_CATCH_UP = 1000

#: ``(runs to start now, runs too late to start, the task's next run time)``. A plain
#: tuple: it is built once per due task, and a NamedTuple's ``__new__`` is Python code.
RunPlan = tuple[list[datetime], list[datetime], datetime | None]


class Planner:
    """Decides runs for the tasks of one scheduler (its ``timezone`` is the zone triggers
    without one of their own use)."""

    def __init__(self, timezone: tzinfo) -> None:
        self.timezone = timezone
        self._fixed_offset = is_fixed_offset(timezone)
        #: Runs asked for while the scheduler is paused, as (store alias, task id): see
        #: :meth:`hold`. Each is decided once without a grace time, then forgotten.
        self.held: set[tuple[str | None, str]] = set()

    def comparable_now(self, now: datetime) -> datetime:
        """``now`` in the scheduler's zone when that zone has a fixed offset (UTC on most
        servers): tasks' run times are mostly in that zone, and two datetimes sharing a
        tzinfo compare and subtract without asking it for offsets, which is several
        times cheaper per comparison. In a zone with DST that shortcut would compare wall
        times (wrong in the repeated hour), so ``now`` stays as it is."""
        zone = self.timezone
        if now.tzinfo is not zone and self._fixed_offset:
            return now.astimezone(zone)
        return now

    def decide(self, task: Task, now: datetime) -> RunPlan:
        """The runs of ``task`` to start at ``now``, those past ``mistrigger_grace_time``,
        and its next run time. With ``coalesce`` any number of overdue fire times fold
        into one run, the latest. Raises whatever the trigger raises (the caller sets
        such a task aside)."""
        first = task.next_run_time
        if first is None or first > now:
            return [], [], first
        profile = task._profile
        grace = profile.mistrigger_grace_time
        if self.held and (task.store_alias, task.id) in self.held:
            self.held.discard((task.store_alias, task.id))
            grace = None  # asked for during a pause (see hold): however late it is now
        next_time = task.trigger.get_next_trigger_time(self.timezone, first, now)
        if next_time is None or next_time > now:  # the common case: one due run
            # (within_grace, inline: one call less per due task)
            if grace is None or (now - first).total_seconds() <= grace:
                return [first], [], next_time
            return [], [first], next_time
        if profile.coalesce:
            last, next_time = self.fold(task, next_time, now)
            run_times = [last]
        else:
            run_times, next_time = task.due_run_times(self.timezone, now, MAX_CATCH_UP)
        on_time = [t for t in run_times if self.within_grace(grace, t, now)]
        if len(on_time) == len(run_times):
            return on_time, [], next_time
        return on_time, [t for t in run_times if not self.within_grace(grace, t, now)], next_time

    def fold(self, task: Task, due: datetime, now: datetime) -> tuple[datetime, datetime | None]:
        """The latest fire time of ``task`` at or before ``now``, from ``due`` (a due one),
        and the fire time after it. The trigger is asked to jump there at once
        (:meth:`~tickwork.triggers.base.BaseTrigger.latest_fire_time`); from its answer,
        or from ``due`` when it has none, the rest is walked, one call per fire time."""
        trigger, zone = task.trigger, self.timezone
        if not is_fixed_offset(now.tzinfo):
            # Two datetimes sharing a zone with DST compare by wall time, which is wrong
            # in the repeated hour; in UTC the walk below compares instants.
            now = now.astimezone(UTC)
        last = trigger.latest_fire_time(zone, due, now)
        if last is not None:
            due = last
        next_time = trigger.get_next_trigger_time(zone, due, now)
        while next_time is not None and next_time <= now:
            due = next_time
            next_time = trigger.get_next_trigger_time(zone, due, now)
        return due, next_time

    def advance_past(self, task: Task, until: datetime) -> datetime | None:
        """The first fire time of ``task`` after ``until``, running nothing (a store taken
        over under ``lock_path`` skips what the previous holder ran)."""
        next_time = task.next_run_time
        if next_time is None or next_time > until:
            return next_time
        return self.fold(task, next_time, until)[1]

    def hold(self, task: Task, now: datetime) -> None:
        """The pause rule: ``task`` was just stored while the scheduler is paused; if it
        is due at once and not late (no trigger, a date trigger without ``run_at``,
        ``next_run_time`` now), its run was asked for explicitly, so the pause delays it
        rather than making it late: it runs when the scheduler resumes, however long the
        pause lasted. (Runs that fall due during a pause by a task's schedule still
        follow the grace rule; a ``run_at`` already past its grace time is still missed.)"""
        first = task.next_run_time
        grace = task._profile.mistrigger_grace_time
        if first is not None and first <= now and self.within_grace(grace, first, now):
            self.held.add((task.store_alias, task.id))

    @staticmethod
    def within_grace(grace: float | None, run_time: datetime, now: datetime) -> bool:
        """The grace rule: a run starts when at most ``grace`` seconds late (``None``:
        however late)."""
        return grace is None or (now - run_time).total_seconds() <= grace

    @staticmethod
    def may_start(task: Task, in_progress: int) -> bool:
        """The instance rule: another run may start while fewer than ``max_instances``
        are in progress (counted over the whole fleet on a shared store; executors count
        their own)."""
        return in_progress < task._profile.max_instances


def write_back(
    task: Task, next_time: datetime | None, updated: list[Task], removed: list[str]
) -> None:
    """Sort a planned task into the write-back lists: advanced to ``next_time``, or
    removed when its trigger is finished (shutdown-trigger tasks stay: they fire at
    every shutdown)."""
    # The MRO, not isinstance: against an abstract class isinstance is a Python-level
    # call, and this runs once per due task.
    if next_time is None and ShutdownTrigger not in type(task.trigger).__mro__:
        removed.append(task.id)
    else:
        task.next_run_time = next_time
        updated.append(task)
