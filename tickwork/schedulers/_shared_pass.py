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

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from tickwork.schedulers._dispatch import Dispatcher
from tickwork.schedulers._planner import Planner, RunPlan, write_back
from tickwork.schedulers._runs import RunKeeper
from tickwork.schedulers._spacing import is_spaced
from tickwork.stores.base import BaseStore, InProgressRun
from tickwork.tasks import Task

__all__ = ["TAKE_OVER_INTERVAL", "SharedStorePass"]

#: How often a scheduler looks for abandoned runs in a shared store. Shared stores are
#: polled every second anyway; looking at every pass would add a query per pass.
TAKE_OVER_INTERVAL = timedelta(seconds=1)

#: At most this many batches of abandoned runs are taken over in one pass (a dead
#: scheduler's runs are usually one batch; the rest wait for the next second).
MAX_TAKE_OVER_ROUNDS = 10

#: What the gate does with a task whose planning raised: it returns the task as it must
#: be written back (set aside).
SetAside = Callable[[Task, Exception], Task]


class SharedStorePass:
    """Claims, records and hands over the due runs of one shared store (see the module
    docstring); the decisions are the :class:`Planner`'s."""

    def __init__(
        self,
        alias: str,
        store: BaseStore,
        planner: Planner,
        dispatcher: Dispatcher,
        runs: RunKeeper,
        identity: str,
        logger: logging.Logger,
    ) -> None:
        self._alias = alias
        self._store = store
        self._planner = planner
        self._dispatcher = dispatcher
        self._runs = runs
        self._identity = identity
        self._logger = logger
        self._next_take_over: datetime | None = None

    def process_batch(
        self, now: datetime, limit: int, set_aside: SetAside
    ) -> tuple[int, list[str]]:
        """Handle one batch; return how many tasks were claimed and the ids removed."""
        store, alias, owner = self._store, self._alias, self._identity
        lease = timedelta(seconds=store.lease_time)
        self._take_over(now, lease, limit)
        self._runs.flush(alias)  # runs that ended in the take-over no longer count
        tasks = store.acquire_due_tasks(now, limit, owner, lease)
        if not tasks:
            return 0, []
        planner = self._planner
        plans: list[tuple[Task, RunPlan]] = []
        updated: list[Task] = []
        removed: list[str] = []
        for task in tasks:
            try:
                plan = planner.decide(task, now)
            except Exception as exc:
                updated.append(set_aside(task, exc))
                continue
            plans.append((task, plan))
            write_back(task, plan[2], updated, removed)
        wanted = [task.id for task, (run_times, _, _) in plans if run_times]
        in_progress = store.count_runs(wanted) if wanted else {}
        to_start = [
            (task, run_times)
            for task, (run_times, _, _) in plans
            if run_times and planner.may_start(task, in_progress.get(task.id, 0))
        ]
        records = [(task, run_time) for task, run_times in to_start for run_time in run_times]
        # The write-back: until it returns, nothing was started (a failure propagates,
        # the claims stay ours and the next pass claims the same tasks again).
        skipped = set(store.release_tasks(owner, updated, removed, records, now + lease) or ())
        self._report(plans, skipped, in_progress, now)
        for task, run_times in to_start:
            if task.id not in skipped:
                self._start(task, run_times)
        self._runs.flush(alias)
        return len(tasks), [task_id for task_id in removed if task_id not in skipped]

    def _report(
        self,
        plans: list[tuple[Task, RunPlan]],
        skipped: set[str],
        in_progress: dict[str, int],
        now: datetime,
    ) -> None:
        for task, (run_times, missed, _) in plans:
            if task.id in skipped:
                self._logger.warning(
                    "task %r: another scheduler holds it now (or its run is already in "
                    "progress); leaving its runs to that one",
                    task.id,
                )
                continue
            if missed:
                self._dispatcher.report_missed(task, missed, now)
            count = in_progress.get(task.id, 0)
            if run_times and not self._planner.may_start(task, count) and is_spaced(task):
                self._dispatcher.report_held(task, run_times)  # (see _spacing.py)
            elif run_times and not self._planner.may_start(task, count):
                self._dispatcher.report_max_instances(
                    task,
                    run_times,
                    f"{count} run(s) in progress across the schedulers sharing store "
                    f"{self._alias!r} (max_instances {task.max_instances})",
                )

    def _start(self, task: Task, run_times: list[datetime], attempt: int = 1) -> None:
        # Tracked first: a synchronous executor finishes the runs inside submit().
        self._runs.track(self._alias, task.id, run_times)
        if not self._dispatcher.submit(task, run_times, attempt=attempt):
            self._runs.finish(self._alias, task.id, run_times)

    def _take_over(self, now: datetime, lease: timedelta, limit: int) -> None:
        """Take over runs abandoned by dead schedulers: run them again within their
        grace time, else report them missed."""
        due = self._next_take_over
        if due is not None and now < due:
            return
        self._next_take_over = now + TAKE_OVER_INTERVAL
        for _ in range(MAX_TAKE_OVER_ROUNDS):
            runs = self._store.take_over_runs(now, limit, self._identity, now + lease)
            for run in runs:
                self._resume(run, now)
            if len(runs) < limit:
                break

    def _resume(self, run: InProgressRun, now: datetime) -> None:
        """Start a run taken over: a pending retry that came due, or a run whose
        scheduler died. The abandoned attempt's record ends as an error (exactly once:
        only one scheduler takes a record over); either way the run is tried again as
        its next attempt within its grace time, else reported missed."""
        task, run_time = run.task, run.run_time
        if not run.is_retry:
            self._logger.warning(
                "run of task %r scheduled at %s (attempt %d) was abandoned by %s; running it again",
                task.id,
                run_time.isoformat(),
                run.attempt - 1,
                run.owner,
            )
            history = self._dispatcher.history
            if history is not None:  # (first: the first final outcome noted is the one kept)
                history.not_started(
                    task,
                    [run_time],
                    "error",
                    error=f"abandoned by {run.owner}",
                    attempt=run.attempt - 1,
                )
        # Tracked first: a synchronous executor finishes the run inside submit().
        self._runs.track(self._alias, task.id, [run_time])
        if not self._dispatcher.start_due(run, now):
            self._runs.finish(self._alias, task.id, [run_time])
