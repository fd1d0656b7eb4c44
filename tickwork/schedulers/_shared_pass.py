"""The processing pass over a store that several schedulers share (``supports_leases``).

Every run of a task must happen once across the fleet, also when a scheduler dies at
any moment. So the order differs from the single-process pass:

1. runs abandoned by dead schedulers (records whose lease expired) are taken over: run
   again if still within the task's ``mistrigger_grace_time``, else reported
   ``TASK_MISSED``, never dropped silently;
2. due tasks are *claimed* for a lease: no other scheduler gets them meanwhile;
3. the runs are decided (coalescing, grace, ``max_instances`` counted over the records
   of the whole fleet);
4. the advanced tasks are written back *together with a record of each run*, in one
   transaction: a scheduler dying before this point has started nothing, and its
   claims expire; one dying after it leaves records that expire;
5. only then are the runs handed to executors; the
   :class:`~tickwork.schedulers._runs.RunKeeper` renews their records until they end.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tickwork.schedulers._runs import RunKeeper
from tickwork.stores.base import BaseStore
from tickwork.tasks import Task

if TYPE_CHECKING:
    from tickwork.schedulers._pass import StoreProcessor

__all__ = ["TAKE_OVER_INTERVAL", "SharedStorePass"]

#: How often a scheduler looks for abandoned runs in a shared store. Shared stores are
#: polled every second anyway; looking at every pass would add a query per pass.
TAKE_OVER_INTERVAL = timedelta(seconds=1)

#: At most this many batches of abandoned runs are taken over in one pass (a dead
#: scheduler's runs are usually one batch; the rest wait for the next second).
MAX_TAKE_OVER_ROUNDS = 10


class SharedStorePass:
    """Claims, records and hands over the due runs of shared stores (see the module
    docstring); the decisions themselves are the :class:`StoreProcessor`'s."""

    def __init__(self, processor: StoreProcessor) -> None:
        self._processor = processor
        self._scheduler = processor._scheduler
        self.runs = RunKeeper(processor._scheduler)
        self._next_take_over: dict[str, datetime] = {}

    def process_batch(
        self, store: BaseStore, alias: str, now: datetime, limit: int
    ) -> tuple[int, list[str]]:
        """Handle one batch; return how many tasks were claimed and the ids removed."""
        owner = self._scheduler.identity
        lease = timedelta(seconds=store.lease_time)
        self._take_over(store, alias, now, lease, limit)
        self.runs.flush(alias)  # runs that ended in the take-over no longer count
        tasks = store.acquire_due_tasks(now, limit, owner, lease)
        if not tasks:
            return 0, []
        processor = self._processor
        plans: list[tuple[Task, list[datetime], list[datetime]]] = []
        updated: list[Task] = []
        removed: list[str] = []
        for task in tasks:
            run_times, missed, next_time = processor.decide(task, now)
            plans.append((task, run_times, missed))
            processor.advance(task, next_time, updated, removed)
        wanted = [task.id for task, run_times, _ in plans if run_times]
        in_progress = store.count_runs(wanted) if wanted else {}
        to_start = [
            (task, run_times)
            for task, run_times, _ in plans
            if run_times and in_progress.get(task.id, 0) < task.max_instances
        ]
        records = [(task, run_time) for task, run_times in to_start for run_time in run_times]
        # The write-back: until it returns, nothing was started (a failure propagates,
        # the claims stay ours and the next pass claims the same tasks again).
        skipped = set(store.release_tasks(owner, updated, removed, records, now + lease) or ())
        for task, run_times, missed in plans:
            if task.id in skipped:
                self._scheduler.logger.warning(
                    "task %r: another scheduler holds it now (or its run is already in "
                    "progress); leaving its runs to that one",
                    task.id,
                )
                continue
            if missed:
                processor.report_missed(task, missed, now)
            count = in_progress.get(task.id, 0)
            if run_times and count >= task.max_instances:
                processor.report_max_instances(
                    task,
                    run_times,
                    f"{count} run(s) in progress across the schedulers sharing store "
                    f"{alias!r} (max_instances {task.max_instances})",
                )
        for task, run_times in to_start:
            if task.id not in skipped:
                self._start(alias, task, run_times)
        self.runs.flush(alias)
        return len(tasks), [task_id for task_id in removed if task_id not in skipped]

    def _start(self, alias: str, task: Task, run_times: list[datetime]) -> None:
        # Tracked first: a synchronous executor finishes the runs inside submit().
        self.runs.track(alias, task.id, run_times)
        if not self._processor.submit(task, run_times):
            self.runs.finish(alias, task.id, run_times)

    def _take_over(
        self, store: BaseStore, alias: str, now: datetime, lease: timedelta, limit: int
    ) -> None:
        """Take over runs abandoned by dead schedulers: run them again within their
        grace time, else report them missed."""
        due = self._next_take_over.get(alias)
        if due is not None and now < due:
            return
        self._next_take_over[alias] = now + TAKE_OVER_INTERVAL
        scheduler = self._scheduler
        for _ in range(MAX_TAKE_OVER_ROUNDS):
            runs = store.take_over_runs(now, limit, scheduler.identity, now + lease)
            for run in runs:
                self._resume(alias, run.task, run.run_time, run.owner, now)
            if len(runs) < limit:
                break

    def _resume(
        self, alias: str, task: Task, run_time: datetime, owner: str, now: datetime
    ) -> None:
        grace = task.mistrigger_grace_time
        if grace is None or (now - run_time).total_seconds() <= grace:
            self._scheduler.logger.warning(
                "run of task %r scheduled at %s was abandoned by %s; running it again",
                task.id,
                run_time.isoformat(),
                owner,
            )
            self._start(alias, task, [run_time])
        else:
            self._processor.report_missed(task, [run_time], now, abandoned_by=owner)
            self.runs.track(alias, task.id, [run_time])
            self.runs.finish(alias, task.id, [run_time])
