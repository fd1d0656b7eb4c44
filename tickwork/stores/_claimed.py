"""A task changed while a pass held its claim: what the write-back keeps.

On a store several schedulers share, a pass claims due tasks, runs them and writes them
back advanced (``release_tasks``). Meanwhile anyone may change one of them (``pause_task``,
``update_task``, ``pause_tasks(tag=)`` from another process). Writing the claimed copy
back would undo that change, silently: a paused task would run on. So each store
remembers the bytes it claimed, writes back only records still holding those bytes, and
hands the others to :func:`merge_changed`: the one rule, for every store.
"""

from __future__ import annotations

from datetime import datetime

from tickwork.tasks import Task

__all__ = ["ClaimedRecords", "merge_changed"]


def merge_changed(
    current: Task, claimed_next: datetime | None, advanced: Task | None
) -> Task | None:
    """The record to store for a task someone changed while a pass held it.

    ``current`` is the task as stored now, ``claimed_next`` its next run time when the pass
    claimed it, ``advanced`` what the pass would have written (``None``: the pass removes
    the task, its trigger is done). The change wins; but when it left the next run time as
    claimed (a change of arguments, tags, name ...), the pass's advance still applies, or
    the run time the pass just handled would come due again and run a second time. A
    pause (``None``) or a new run time is kept. Returns ``None`` when the task is to go."""
    if current.next_run_time != claimed_next:
        return current
    if advanced is None:
        return None
    current.next_run_time = advanced.next_run_time
    return current


class ClaimedRecords:
    """What one store object claimed: the stored bytes and next run time of each task, from
    ``acquire_due_tasks`` until its write-back. Only the process holding a claim writes it
    back, so this lives in memory; a claim never written back (the process died) is taken
    over by another scheduler, which claims afresh."""

    __slots__ = ("_was",)

    def __init__(self) -> None:
        self._was: dict[str, tuple[bytes, datetime | None]] = {}

    def remember(self, task_id: str, blob: bytes, next_run_time: datetime | None) -> None:
        self._was[task_id] = (blob, next_run_time)

    def blob(self, task_id: str) -> bytes | None:
        """The bytes claimed for ``task_id`` (``None``: not claimed through this object,
        so the write-back cannot tell a change and writes as before)."""
        was = self._was.get(task_id)
        return None if was is None else was[0]

    def next_run_time(self, task_id: str) -> datetime | None:
        was = self._was.get(task_id)
        return None if was is None else was[1]

    def forget(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            self._was.pop(task_id, None)

    def clear(self) -> None:
        self._was.clear()
