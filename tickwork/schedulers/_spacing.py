"""Spacing between runs: fixed-delay triggers and the ``cooldown`` task option.

A task is *spaced* when its next run must keep a distance from the **end** of its
previous run: its trigger is a :class:`~tickwork.triggers.delay.DelayTrigger` (the next
run ``delay`` after the previous one ended), or it has a ``cooldown`` (no run sooner
than ``cooldown`` seconds after the previous one ended, on any member of a fleet). Its
spacing is the larger of the two. One mechanism serves both:

* **When a run ends** (success, error, timeout or cancel alike), the task's stored
  ``next_run_time`` becomes ``max(next_run_time, finished_at + spacing)``. The
  :class:`~tickwork.schedulers._retries.Retrier` sees every outcome before any listener
  and hands the runs of spaced tasks to the :class:`RunSpacer`, which writes the new
  time off the event loop (its own thread, or the
  :class:`~tickwork.schedulers._runs.RunKeeper`'s), under the store gate's lock, so it
  never interleaves with a pass's write-back in this process.
* **In a fleet** (a store with leases), the write goes through ``release_tasks`` for
  this scheduler, which leaves a task another member has claimed alone (the write is
  tried again once that claim is released), and the run's record in the store is
  deleted only *after* the write landed (the keeper asks :meth:`RunSpacer.flush`
  first). So another member either sees the run still recorded (and holds the task,
  see below) or sees the moved ``next_run_time``: it never starts the next run before
  ``finished_at + spacing``.
* **While a run is in progress**, the task's provisional next run time may come due
  (a delay trigger gives "one delay after the run started": the run cannot end sooner;
  a cooldown task's own trigger may fire meanwhile). The task is then *held*: no second
  run starts, and no ``TASK_MAX_INSTANCES`` is reported (the run that fell due is not
  skipped, it is postponed: the end of the run moves it past the spacing). The pass
  writes the trigger's next time back as usual, which for a delay trigger is one delay
  from now, so a long run is looked at once per delay, not at every pass. Runs in
  progress are counted fleet-wide on a shared store (``count_runs``) and by the
  executor otherwise; both refuse the run through the ``max_instances`` rule, which for
  a spaced task means "hold", logged at DEBUG.

* **Between a run's end and the move**, the executor has already freed the run's
  ``max_instances`` slot (it does so before reporting the outcome) and the move is
  queued but not written: the dispatcher asks the
  :class:`~tickwork.schedulers._retries.Retrier` (``holds``: a run still followed, or
  :meth:`RunSpacer.pending`) and holds the task as above. Without this a pass in that
  window started the next run at once (a gap of about a millisecond was seen under
  load where ``cooldown`` asked for 0.5 s).

Runs of a spaced task never overlap, and the fire times held or postponed fold into
one run, so such a task is refused with ``max_instances`` above 1 or ``coalesce=False``
(:func:`check_spacing`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tickwork._task_fields import UNSET
from tickwork.clock import Clock
from tickwork.exceptions import InvalidTaskError
from tickwork.tasks import Task

if TYPE_CHECKING:
    from tickwork.schedulers._gate import StoreGate

__all__ = ["RunSpacer", "check_spacing", "is_spaced", "spacing_of"]

#: After a write that failed (or met another member's claim), wait this long.
RETRY_DELAY = 0.25


def is_spaced(task: Task) -> bool:
    """True when the task's next run keeps a distance from its previous run's end."""
    return task.trigger.spacing is not None or task._profile.policy.cooldown is not None


def spacing_of(task: Task) -> float | None:
    """Seconds the next run of ``task`` keeps from the end of the previous one: the
    larger of its trigger's delay and its ``cooldown`` (``None``: not spaced)."""
    delay = task.trigger.spacing
    cooldown = task._profile.policy.cooldown
    if cooldown is None or cooldown is UNSET:
        return delay
    return cooldown if delay is None else max(delay, cooldown)


def check_spacing(task: Task) -> None:
    """Refuse a spaced task whose rules contradict spacing, naming the rule and why."""
    if task.trigger is UNSET or not is_spaced(task):
        return
    profile = task._profile
    what = (
        f"a fixed delay ({task.trigger!r})"
        if task.trigger.spacing is not None
        else f"cooldown={profile.policy.cooldown!r}"
    )
    if profile.max_instances is not UNSET and profile.max_instances > 1:
        raise InvalidTaskError(
            f"task {task.id!r} has {what} and max_instances={profile.max_instances}: runs "
            "spaced from the end of the previous run never overlap, so max_instances must "
            "be 1"
        )
    if profile.coalesce is False:
        raise InvalidTaskError(
            f"task {task.id!r} has {what} and coalesce=False: the fire times that fall due "
            "while a run is in progress or cooling down are postponed into one run, never "
            "run one by one; use coalesce=True"
        )


class RunSpacer:
    """Moves the next run times of spaced tasks when their runs end (see the module
    docstring)."""

    def __init__(
        self,
        gates: Mapping[str, StoreGate],
        identity: str,
        clock: Clock,
        logger: logging.Logger,
    ) -> None:
        self._gates = gates
        self._identity = identity
        self._clock = clock
        self._logger = logger
        self._cond = threading.Condition()
        #: The moves to write: store alias -> task id -> the earliest next run time.
        self._queued: dict[str, dict[str, datetime]] = {}
        #: Aliases whose moves a thread is writing now.
        self._busy: set[str] = set()
        #: (alias, task id) of the moves being written now.
        self._writing: set[tuple[str, str]] = set()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def ended(self, task: Task) -> None:
        """A run of the spaced ``task`` ended now: queue the move of its next run time."""
        spacing = spacing_of(task)
        if spacing is None:
            return
        target = self._clock.now() + timedelta(seconds=spacing)
        alias = task.store_alias or "default"
        with self._cond:
            moves = self._queued.setdefault(alias, {})
            earlier = moves.get(task.id)
            if earlier is None or earlier < target:
                moves[task.id] = target
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(
                    target=self._loop, name="tickwork-run-spacer", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def pending(self, task: Task) -> bool:
        """True while a move of ``task``'s next run time is queued or being written."""
        alias = task.store_alias or "default"
        with self._cond:
            return task.id in self._queued.get(alias, {}) or (alias, task.id) in self._writing

    def flush(self) -> set[str]:
        """Write the queued moves now, on the calling thread; return the aliases with
        moves not written (being written by another thread, met another member's claim,
        or failed). The run keeper keeps those stores' run records until they are."""
        with self._cond:
            taken = {
                alias: moves for alias, moves in self._queued.items() if alias not in self._busy
            }
            for alias in taken:
                del self._queued[alias]
            self._busy.update(taken)
            writing = {(alias, task_id) for alias, moves in taken.items() for task_id in moves}
            self._writing |= writing
        unwritten: set[str] = set()
        try:
            for alias, moves in taken.items():
                left = self._write(alias, moves)
                if left:
                    unwritten.add(alias)
                    self._requeue(alias, left)
        finally:
            with self._cond:
                self._busy.difference_update(taken)
                self._writing -= writing
                unwritten |= self._busy | {alias for alias, moves in self._queued.items() if moves}
        return unwritten

    def _requeue(self, alias: str, left: dict[str, datetime]) -> None:
        with self._cond:
            moves = self._queued.setdefault(alias, {})
            for task_id, target in left.items():
                if task_id not in moves or moves[task_id] < target:
                    moves[task_id] = target

    def _write(self, alias: str, moves: dict[str, datetime]) -> dict[str, datetime]:
        """Write ``moves`` to store ``alias``; return those to try again."""
        gate = self._gates.get(alias)
        if gate is None:
            self._logger.warning(
                "store %r was removed: the next run time of %d spaced task(s) not moved",
                alias,
                len(moves),
            )
            return {}
        store = gate.store
        left: dict[str, datetime] = {}
        try:
            with gate.lock:  # never between a pass's claim and its write-back here
                for task_id, target in moves.items():
                    task = store.lookup_task(task_id)
                    current = None if task is None else task.next_run_time
                    if task is None or current is None or current >= target:
                        continue  # deleted, paused, or already later
                    moved = task._shallow_copy()
                    moved.next_run_time = target
                    # release_tasks, not update_task: on a shared store it leaves a task
                    # another member has claimed alone (tried again after its release).
                    if task_id in set(store.release_tasks(self._identity, [moved], ()) or ()):
                        left[task_id] = target
                        continue
                    self._logger.debug(
                        "task %r: next run moved from %s to %s (spaced from the end of its run)",
                        task_id,
                        current.isoformat(),
                        target.isoformat(),
                        extra={"task_id": task_id},
                    )
        except Exception as exc:
            self._logger.warning(
                "could not move the next run time of %d spaced task(s) in store %r (%s: %s); "
                "retrying",
                len(moves),
                alias,
                type(exc).__name__,
                exc,
            )
            return moves
        return left

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not any(self._queued.values()):
                    self._cond.wait()
                if self._stopping:
                    self._thread = None
                    return
            if self.flush():
                with self._cond:
                    self._cond.wait(RETRY_DELAY)  # (woken early by a new end or by close)

    def close(self) -> None:
        """Stop the thread and write what is queued (shutdown, before the stores close)."""
        with self._cond:
            thread, self._stopping = self._thread, True
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
        left = self.flush()
        with self._cond:
            self._thread, self._stopping = None, False
        if left:
            self._logger.warning(
                "store(s) %s: the next run time of spaced tasks could not be moved before shutdown",
                sorted(left),
            )
