"""The task manager: add, find, change, run and inspect tasks, and the tasks added
before the scheduler starts. The scheduler's task methods delegate here.

It receives the parts it needs (the plug-ins, the event hub, the dispatcher for
``run_task``, the planner for runs asked for during a pause, the clock and zone, the
defaults) and a few callables into the façade (its lifecycle state, waking its driver);
it never sees the scheduler itself.

A task added with the id of a stored one (a program that adds its tasks at every start,
on a persistent store) is settled by ``replace_existing`` (:data:`Conflict`), in
:meth:`TaskManager.store_task`: ``True`` replaces the stored task but keeps its next run
time when the trigger is the same, so the runs that fell due while no scheduler ran are
run or reported missed by the task's rules, never dropped; ``"keep"`` keeps the stored
task as it is. Before ``start()`` the inspection methods show the pending tasks as that
will leave them.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal, TypeAlias, TypeVar

from tickwork._run_policy import POLICY_FIELDS
from tickwork._spelling import ADD_TASK_SYNONYMS, either
from tickwork._task_fields import check_tag, check_tags
from tickwork._task_owner import TaskOwner
from tickwork.clock import Clock
from tickwork.events import (
    ALL_TASKS_REMOVED,
    TASK_ADDED,
    TASK_MODIFIED,
    TASK_REMOVED,
    SchedulerEvent,
    TaskEvent,
)
from tickwork.exceptions import (
    ConfigurationError,
    ConflictIdError,
    InvalidTaskError,
    SchedulerNotRunningError,
    TaskLookupError,
    TickworkError,
    UnknownAliasError,
)
from tickwork.executors.pool import ProcessPoolExecutor
from tickwork.runs import make_run_id
from tickwork.schedulers._dispatch import Dispatcher
from tickwork.schedulers._events import EventHub
from tickwork.schedulers._leadership import check_leader_only
from tickwork.schedulers._planner import Planner
from tickwork.schedulers._plugins import Plugins
from tickwork.schedulers._spacing import check_spacing
from tickwork.schedulers._state import Lifecycle, SchedulerState
from tickwork.stores.base import BaseStore, PendingRetry
from tickwork.tasks import UNSET, Task
from tickwork.triggers import build_trigger, trigger_registry
from tickwork.triggers.base import BaseTrigger
from tickwork.triggers.date import DateTrigger
from tickwork.triggers.shutdown import ShutdownTrigger

__all__ = ["Conflict", "PendingTask", "TaskManager"]

_STOPPED = SchedulerState.STOPPED
_PAUSED = SchedulerState.PAUSED

#: ``add_task(replace_existing=...)``: what to do when a task with the same id exists.
#: ``False`` raises ``ConflictIdError``; ``True`` replaces it, keeping its next run time
#: when the trigger is the same; ``"keep"`` keeps the stored task as it is.
Conflict: TypeAlias = bool | Literal["keep"]

#: A task added before start() and its ``replace_existing``.
PendingTask: TypeAlias = tuple[Task, Conflict]

F = TypeVar("F", bound=Callable[..., Any])


class TaskManager:
    """add_task, get_task(s), update/reschedule/pause/resume/delete/run, inspection."""

    def __init__(
        self,
        plugins: Plugins,
        events: EventHub,
        dispatcher: Dispatcher,
        planner: Planner,
        clock: Clock,
        timezone: tzinfo,
        task_defaults: dict[str, Any],
        owner: weakref.ref[TaskOwner],
        lock: threading.RLock,
        lifecycle: Lifecycle,
        wake_for: Callable[[datetime | None], None],
        logger: logging.Logger,
    ) -> None:
        self._plugins = plugins
        # The plug-ins' dicts themselves (they change in place): one attribute read on
        # every add instead of two.
        self._stores: dict[str, BaseStore] = plugins.stores
        self._executors = plugins.executors
        self._gates = plugins.gates
        self._events = events
        self._dispatcher = dispatcher
        self._planner = planner
        self.clock = clock
        self.timezone = timezone
        #: The scheduler's ``task_defaults`` (one dict, shared: changes show at once).
        self.task_defaults = task_defaults
        self._self_ref = owner  # the one weak reference every task holds
        #: The scheduler's lock: start() moves the pending tasks and sets the state under
        #: it, so a task added meanwhile is either moved or stored, never dropped.
        self._lock = lock
        self._life = lifecycle
        self._wakeup_for = wake_for
        self.logger = logger
        #: Tasks added before start(), with their replace_existing.
        self._pending: list[PendingTask] = []
        #: The scheduler's ``lock_path``: with it, memory and file stores elect a leader.
        self.lock_path: str | None = None
        #: ``allowed_modules``' check of a task being added (tickwork/security/modules.py).
        self.check_modules: Callable[[Task], None] | None = None
        #: (store alias, task id) of the tasks with a shutdown trigger.
        self._shutdown_tasks: set[tuple[str, str]] = set()
        #: The scheduled time of the last run asked for with :meth:`request_run`.
        self._last_request: datetime | None = None

    @property
    def running(self) -> bool:
        """True while the scheduler is started."""
        return self._life.state is not _STOPPED

    def _store_lock(self, alias: str) -> threading.RLock:
        """The lock held around a change of ``alias``'s tasks; the change makes the pass
        look at that store again (see StoreGate.dirty)."""
        gate = self._gates[alias]
        gate.dirty = True
        return gate.lock

    # -- for the scheduler's lifecycle and its pass --------------------------------------------

    def check_pending_aliases(self) -> None:
        """Raise ``UnknownAliasError`` for a pending task naming a missing store or
        executor, ``NoElectionError`` for a leader-only one in a store that cannot elect
        (start() checks before anything starts)."""
        plugins = self._plugins
        for task, _ in self._pending:
            if task.executor not in plugins.executors:
                raise UnknownAliasError("executor", task.executor, list(plugins.executors))
            alias = task.store_alias or "default"
            if alias not in plugins.stores:
                raise UnknownAliasError("store", task.store_alias, list(plugins.stores))
            check_leader_only(task, alias, plugins.stores[alias], self.lock_path)

    def take_pending(self) -> list[PendingTask]:
        """Hand over the tasks added before start (under the scheduler's lock)."""
        pending, self._pending = self._pending, []
        return pending

    def restore_pending(self, unstored: list[PendingTask]) -> None:
        """Keep tasks a failed start could not store, for the next start()."""
        self._pending = unstored + self._pending

    def pending_count(self) -> int:
        """How many tasks wait for start()."""
        return len(self._pending)

    def shutdown_tasks_to_run(self) -> list[Task]:
        """The stored tasks with a shutdown trigger, in a stable order."""
        tasks = []
        for store_alias, task_id in sorted(self._shutdown_tasks):
            store = self._stores.get(store_alias)
            task = store.lookup_task(task_id) if store else None
            if task is not None:
                tasks.append(task)
        return tasks

    def forget_removed(self, alias: str, task_ids: tuple[str, ...]) -> None:
        """The pass removed these tasks (finished triggers): report them and forget them."""
        for task_id in task_ids:
            self._shutdown_tasks.discard((alias, task_id))
        self._dispatcher.report_removed(alias, list(task_ids))

    def _bind(self, task: Task) -> None:
        if task._scheduler is not self._self_ref:
            task._set_shared(scheduler=self._self_ref)

    # -- adding tasks ------------------------------------------------------------------------

    def add_task(
        self,
        fn_or_task: Callable[..., Any] | str | Task | None,
        trigger: BaseTrigger | str | None,
        args: Iterable[Any] | None,
        kwargs: Mapping[str, Any] | None,
        id: str | None,
        name: str | None,
        mistrigger_grace_time: float | timedelta | None,
        coalesce: bool,
        max_instances: int,
        next_run_time: datetime | None,
        store: str | None,
        executor: str | None,
        replace_existing: Conflict,
        trigger_args: dict[str, Any],
        policy: tuple[Any, ...] | None = None,
        tags: Iterable[str] | None = None,
    ) -> Task | Callable[[F], F]:
        """:meth:`BaseScheduler.add_task`, its keywords passed positionally (this runs on
        every add, and keyword matching costs); ``policy`` holds the five run-policy
        keywords (``UNSET`` where not given), ``None`` when none was."""
        if replace_existing is not False and replace_existing is not True:
            _check_conflict(replace_existing)
        if fn_or_task is not None and not isinstance(fn_or_task, Task):
            # The common call, spelt out: no options dict, no second pass over them.
            task = Task.__new__(Task)
            try:
                task._fill(
                    fn_or_task,
                    self._make_trigger(trigger, trigger_args) if trigger or trigger_args else None,
                    args,
                    kwargs,
                    id,
                    name,
                    executor,
                    None,
                    coalesce,
                    max_instances,
                    mistrigger_grace_time,
                    next_run_time,
                    self.task_defaults,
                    self._self_ref,
                    policy,
                )
            except TickworkError:
                # Only now, so the common call pays nothing for them: a trigger alias
                # where the function goes, and APScheduler 3's keywords, which reach the
                # trigger (it takes every keyword add_task does not) and fail there.
                _refuse_trigger_alias_as_function(fn_or_task)
                if ADD_TASK_SYNONYMS.keys().isdisjoint(trigger_args):
                    raise
                return self._add_respelt(
                    fn_or_task,
                    trigger,
                    args,
                    kwargs,
                    id,
                    name,
                    mistrigger_grace_time,
                    coalesce,
                    max_instances,
                    next_run_time,
                    store,
                    executor,
                    replace_existing,
                    trigger_args,
                    policy,
                    tags,
                )
            if tags is not None:
                task.tags = check_tags(tags)
            return self._add(task, store or "default", replace_existing)
        if trigger_args and not ADD_TASK_SYNONYMS.keys().isdisjoint(trigger_args):
            # asyncz's fn= (the decorator form otherwise), APScheduler 3's keywords
            return self._add_respelt(
                fn_or_task,
                trigger,
                args,
                kwargs,
                id,
                name,
                mistrigger_grace_time,
                coalesce,
                max_instances,
                next_run_time,
                store,
                executor,
                replace_existing,
                trigger_args,
                policy,
                tags,
            )
        options: dict[str, Any] = {
            "args": args,
            "kwargs": kwargs,
            "id": id,
            "name": name,
            "mistrigger_grace_time": mistrigger_grace_time,
            "coalesce": coalesce,
            "max_instances": max_instances,
            "next_run_time": next_run_time,
            "executor": executor,
            "tags": tags,
        }
        if policy is not None:
            options.update({name: value for name, value in zip(POLICY_FIELDS, policy, strict=True)})
        if fn_or_task is None:
            if id is not None and replace_existing is False:
                # As asyncz does: a decorated function with an id is the same task at
                # every start, so on a persistent store it replaces the stored one
                # (keeping its schedule) instead of failing the second start.
                replace_existing = True
            conflict = replace_existing

            def decorator(fn: F) -> F:
                task = self._new_task(fn, trigger, trigger_args, options)
                qualname = getattr(fn, "__qualname__", "<")
                if "<" not in qualname:
                    # The decorated name is bound in its module only after the decorator
                    # returns, so the reference cannot be checked by importing it yet;
                    # it is checked when a store loads the task.
                    task._set_shared(fn_ref=f"{fn.__module__}:{qualname}")
                self._add(task, store or "default", conflict)
                return fn

            return decorator
        task = fn_or_task
        changes = {
            k: v for k, v in options.items() if v is not None and v is not UNSET and k != "id"
        }
        if trigger is not None or trigger_args:
            changes["trigger"] = self._make_trigger(trigger, trigger_args)
        task._apply(changes)
        return self._add(task, store or task.store_alias or "default", replace_existing)

    def _add_respelt(
        self,
        fn_or_task: Callable[..., Any] | str | Task | None,
        trigger: BaseTrigger | str | None,
        args: Iterable[Any] | None,
        kwargs: Mapping[str, Any] | None,
        id: str | None,
        name: str | None,
        mistrigger_grace_time: float | timedelta | None,
        coalesce: bool,
        max_instances: int,
        next_run_time: datetime | None,
        store: str | None,
        executor: str | None,
        replace_existing: Conflict,
        trigger_args: dict[str, Any],
        policy: tuple[Any, ...] | None,
        tags: Iterable[str] | None = None,
    ) -> Task | Callable[[F], F]:
        """:meth:`add_task` with the other spellings among ``trigger_args``
        (:data:`~tickwork._spelling.ADD_TASK_SYNONYMS`: ``fn``, ``func``,
        ``misfire_grace_time``, ``jobstore``) taken as tickwork's; a value given under
        both names is refused, naming both."""
        given: dict[str, Any] = {
            "fn_or_task": fn_or_task,
            "mistrigger_grace_time": mistrigger_grace_time,
            "store": store,
        }
        # (None is a grace time, UNSET its "not given"; the others' "not given" is None.)
        absent = {"fn_or_task": None, "mistrigger_grace_time": UNSET, "store": None}
        named: dict[str, str] = {}  # the keyword each value came as
        rest = dict(trigger_args)
        for old, new in ADD_TASK_SYNONYMS.items():
            if old not in rest:
                continue
            value = rest.pop(old)
            if new == "fn_or_task" and given[new] is not None:
                first = f"{named[new]}=" if new in named else "the first argument"
                raise InvalidTaskError(
                    f"add_task got the function twice, as {first} and as {old}=: give it "
                    "once (the first argument, or fn=), not both"
                )
            given[new] = either(new, given[new], old, value, absent[new], InvalidTaskError)
            named[new] = old
        return self.add_task(
            given["fn_or_task"],
            trigger,
            args,
            kwargs,
            id,
            name,
            given["mistrigger_grace_time"],
            coalesce,
            max_instances,
            next_run_time,
            given["store"],
            executor,
            replace_existing,
            rest,
            policy,
            tags,
        )

    def _new_task(
        self,
        fn: Callable[..., Any] | str,
        trigger: BaseTrigger | str | None,
        trigger_args: dict[str, Any],
        options: dict[str, Any],
    ) -> Task:
        return Task(
            fn,
            self._make_trigger(trigger, trigger_args) if trigger or trigger_args else None,
            **options,
        )

    def add_tasks(self, tasks: Iterable[Task], store: str | None = None) -> list[Task]:
        """Add prepared tasks in one go (one transaction on SQL stores when running)."""
        tasks = list(tasks)
        alias = store or "default"
        for task in tasks:
            self._prepare(task, alias)
        if not self.running:
            for task in tasks:
                self._add_pending(task, False)
            return tasks
        now = self.clock.now()
        for task in tasks:
            self._fill_next_run_time(task, now)
        target = self._lookup_store(alias)
        with self._store_lock(alias):
            target.add_tasks(tasks)
        if self._life.state is _PAUSED:
            for task in tasks:
                self._planner.hold(task, now)
        for task in tasks:
            self._after_store(task, alias)
        self._wakeup_for(min((t.next_run_time for t in tasks if t.next_run_time), default=None))
        return tasks

    def _make_trigger(
        self, trigger: BaseTrigger | str | None, trigger_args: dict[str, Any]
    ) -> BaseTrigger:
        if type(trigger) is not str and isinstance(trigger, BaseTrigger):
            if trigger_args:
                raise ConfigurationError(
                    f"trigger keywords {sorted(trigger_args)} go with a trigger alias, not with {trigger!r}"
                )
            return trigger
        return build_trigger(trigger or "date", trigger_args, self.timezone)

    def _prepare(self, task: Task, store_alias: str) -> None:
        """Fill unset fields from the defaults and check the task fits its store."""
        if task.trigger is UNSET:
            task.trigger = DateTrigger(timezone=self.timezone)
        task._adopt(self.task_defaults, self._self_ref)
        if task.trigger.spacing is not None or task._profile.policy.cooldown is not None:
            check_spacing(task)  # (inline test first: this runs on every add)
        if task._profile.context is not None:
            self._check_context(task)
        if self.check_modules is not None:
            self.check_modules(task)
        task.store_alias = store_alias
        running = self._life.state is not _STOPPED
        executor = self._executors.get(task.executor)
        if executor is None:
            if running:
                raise UnknownAliasError("executor", task.executor, list(self._executors))
        else:
            executor.validate_task(task)
        target = self._stores.get(store_alias)
        if target is None and (running or store_alias != "default"):
            raise UnknownAliasError("store", store_alias, list(self._stores))
        if target is not None and task._profile.policy.leader_only:  # (every add: no call)
            check_leader_only(task, store_alias, target, self.lock_path)
        if target is not None and not running:
            # A pending task is only stored at start(): check now that the store can keep
            # it. A running scheduler hands it to the store at once, and the store refuses
            # it before writing anything (BaseStore contract), so it is not encoded twice.
            target.validate_task(task)

    def _check_context(self, task: Task) -> None:
        """Refuse a task that asks for a TaskContext on a process pool (see
        :mod:`tickwork.context`)."""
        executor = self._executors.get(task.executor)
        if isinstance(executor, ProcessPoolExecutor):
            raise InvalidTaskError(
                f"task {task.id!r}: {task.name} asks for a TaskContext (parameter "
                f"{task._profile.context!r}), which cannot go to the process pool "
                f"{task.executor!r}: its runs are pickled to another process, and the "
                "scheduler's resources (pools, clients) cannot be; run it on a thread pool "
                "or the asyncio executor"
            )

    def _add(self, task: Task, store_alias: str, replace_existing: Conflict) -> Task:
        """Add ``task`` (pending before start); returns the task that is kept (the stored
        one when ``replace_existing="keep"`` meets one)."""
        self._prepare(task, store_alias)
        if self._life.state is _STOPPED:
            # Under the lock: start() moves the pending tasks and then sets the state, both
            # under it, so a task is either moved or stored, never dropped in between. A
            # running scheduler needs no lock to know it is running.
            with self._lock:
                if self._life.state is _STOPPED:
                    return self._add_pending(task, replace_existing)
        return self.store_task(task, replace_existing)

    def _add_pending(self, task: Task, replace_existing: Conflict) -> Task:
        with self._lock:
            for index, (other, _) in enumerate(self._pending):
                if other.id == task.id:
                    if not replace_existing:
                        raise ConflictIdError(task.id)
                    if replace_existing == "keep":
                        return other
                    del self._pending[index]
                    break
            self._pending.append((task, replace_existing))
        self.logger.debug("task %r added; it is scheduled when the scheduler starts", task.id)
        return task

    def _fill_next_run_time(self, task: Task, now: datetime) -> None:
        if task.next_run_time is UNSET:
            task.next_run_time = task.trigger.get_next_trigger_time(self.timezone, None, now)

    def store_task(self, task: Task, replace_existing: Conflict) -> Task:
        """Add a prepared task to its (running) store; returns the task the store keeps.

        A stored task with the same id raises ``ConflictIdError`` unless
        ``replace_existing`` settles it (:data:`Conflict`). ``True`` replaces it; its next
        run time stays when the trigger is the same (and no ``next_run_time`` was given),
        so the runs that fell due while no scheduler ran follow the task's grace and
        coalesce rules: run, or reported ``TASK_MISSED``. A changed trigger takes its
        own next time, and the log names the stored task's due runs it drops.
        ``"keep"`` keeps the stored task as it is (and returns it)."""
        computed = task.next_run_time is UNSET
        if computed:
            task.next_run_time = task.trigger.get_next_trigger_time(
                self.timezone, None, self.clock.now()
            )
        alias = task.store_alias or "default"
        target = self._stores.get(alias)
        if target is None:
            raise UnknownAliasError("store", alias, list(self._stores))
        own_time = True  # the next run time is this task's (not the stored task's)
        with self._store_lock(alias):
            try:
                target.add_task(task)
            except ConflictIdError:
                if not replace_existing:
                    raise
                stored = self._lookup(target, task.id)
                if stored is None:
                    self._overwrite(target, task)
                elif replace_existing == "keep":
                    return self._keep(stored, alias)
                else:
                    own_time = self._replace(target, task, stored, computed)
        if own_time and self._life.state is _PAUSED:
            self._planner.hold(task, self.clock.now())
        self._after_store(task, alias)
        self._wakeup_for(task.next_run_time)
        return task

    def _replace(self, target: BaseStore, task: Task, stored: Task, computed: bool) -> bool:
        """Replace ``stored`` by ``task`` (see :meth:`store_task`), under the store's lock;
        returns True when ``task`` keeps its own next run time."""
        if computed and stored.trigger == task.trigger:
            # The same schedule: it goes on where the stored task got to. (A date
            # trigger without run_at is never the same: it is fixed when first asked.)
            task.next_run_time = stored.next_run_time
            if not _same_definition(task, stored):
                target.update_task(task)
            # else nothing to write: leaving the stored task alone also leaves alone
            # whatever another scheduler of a fleet is doing with it right now
            self.logger.debug("task %r replaced; its schedule goes on", task.id)
            return False
        self._log_dropped_runs(stored, task)
        target.update_task(task)
        return True

    def _overwrite(self, target: BaseStore, task: Task) -> None:
        """Write ``task`` over a stored task with its id that cannot be loaded (its
        function was renamed, its data is damaged: the store logged why), also for
        ``"keep"``: a task that cannot run is not worth keeping. If it was removed
        meanwhile (its last run ended), add ``task`` anew."""
        self.logger.warning(
            "task %r: the stored task with this id cannot be loaded; replaced by the one added now",
            task.id,
            extra={"task_id": task.id},
        )
        try:
            target.update_task(task)
        except TaskLookupError:
            target.add_task(task)

    def _keep(self, stored: Task, alias: str) -> Task:
        """``replace_existing="keep"`` met ``stored``: it stays as it is (nothing is
        added, so no ``TASK_ADDED``); its runs are the stored schedule's."""
        self._bind(stored)
        if ShutdownTrigger in type(stored.trigger).__mro__:
            self._shutdown_tasks.add((alias, stored.id))
        self.logger.debug("task %r kept as stored in store %r", stored.id, alias)
        self._wakeup_for(stored.next_run_time)
        return stored

    def _log_dropped_runs(self, stored: Task, task: Task) -> None:
        """Log the runs ``stored`` had due that ``task``'s new schedule does not run: no
        scheduler ran them (the program was down, or reloading), and the changed
        trigger's schedule begins now. Logged rather than reported ``TASK_MISSED``:
        they belong to a schedule that no longer exists."""
        due = stored.next_run_time
        if due is None or due > self.clock.now():
            return
        ours = task.next_run_time
        if ours is not None and ours <= due:
            return  # the new schedule still runs them
        self.logger.warning(
            "task %r: its runs due from %s until %s were processed by no scheduler and "
            "are not run: the task was added again (replace_existing=True) with another "
            "trigger, whose schedule applies from now",
            task.id,
            due.isoformat(),
            ours.isoformat() if ours is not None else "its end",
            extra={"task_id": task.id},
        )

    def _after_store(self, task: Task, alias: str) -> None:
        task.store_alias = alias
        # The MRO, not isinstance: against an abstract class isinstance is a Python-level
        # call, and this runs on every add.
        if ShutdownTrigger in type(task.trigger).__mro__:
            self._shutdown_tasks.add((alias, task.id))
        self.logger.debug("task %r added to store %r", task.id, alias)
        if self._events.mask & TASK_ADDED:  # (_wants, inline: this runs on every add)
            self._events.emit(TaskEvent(TASK_ADDED, task.id, alias))

    # -- finding and changing tasks ------------------------------------------------------------

    def _lookup_store(self, alias: str) -> BaseStore:
        try:
            return self._stores[alias]
        except KeyError:
            raise UnknownAliasError("store", alias, list(self._stores)) from None

    def _lookup(self, target: BaseStore, task_id: str) -> Task | None:
        """``target.lookup_task``, the task found bound to this scheduler."""
        found = target.lookup_task(task_id)
        if found is not None:
            self._bind(found)
        return found

    def _all_stored(self, alias: str) -> list[Task]:
        """The tasks of store ``alias``, bound to this scheduler."""
        tasks = self._lookup_store(alias).get_all_tasks()
        for task in tasks:
            self._bind(task)
        return tasks

    def _find(self, task_id: str, store: str | None) -> tuple[Task, str | None]:
        """Return (task, store alias); alias None means a pending task. Raises
        TaskLookupError."""
        with self._lock:
            for task, _ in self._pending:
                if task.id == task_id and (store is None or task.store_alias == store):
                    return task, None
            aliases = [store] if store is not None else list(self._stores)
        for alias in aliases:
            target = self._stores.get(alias)
            if target is None:
                raise UnknownAliasError("store", alias, list(self._stores))
            found = self._lookup(target, task_id)
            if found is not None:
                return found, alias
        raise TaskLookupError(task_id, store)

    # -- how pending tasks will be scheduled (inspection before start) -------------------------

    def _as_scheduled(
        self, task: Task, conflict: Conflict, stored: Task | None, now: datetime
    ) -> tuple[Task, bool]:
        """The pending ``task`` as start() will schedule it if started ``now``, and
        whether that is the pending task (not the stored one it meets). ``stored`` is the
        stored task with its id, if any; start() settles them as :meth:`store_task` says.

        The pending task itself is not changed: the answer is a copy with its next run
        time, computed on a copy of a trigger that fixes its times when first asked (a
        date trigger without ``run_at``), so the run still counts from start()."""
        if stored is not None and conflict == "keep":
            return stored, False
        shown = task._shallow_copy()
        if shown.next_run_time is UNSET:
            trigger = task.trigger if task.trigger.shareable else copy.deepcopy(task.trigger)
            shown.trigger = trigger
            shown.next_run_time = trigger.get_next_trigger_time(self.timezone, None, now)
            if stored is not None and conflict is True and stored.trigger == trigger:
                shown.next_run_time = stored.next_run_time
        return shown, True

    def _shown(self, task_id: str, store: str | None) -> tuple[Task, bool]:
        """The task with this id as inspection shows it, and whether it is pending.
        Raises TaskLookupError."""
        with self._lock:
            entry = next(
                (
                    (task, conflict)
                    for task, conflict in self._pending
                    if task.id == task_id and (store is None or task.store_alias == store)
                ),
                None,
            )
        if entry is None:
            return self._find(task_id, store)[0], False
        task, conflict = entry
        target = self._stores.get(task.store_alias or "default")
        stored = self._lookup(target, task_id) if conflict and target is not None else None
        return self._as_scheduled(task, conflict, stored, self.clock.now())

    def _listing(self, store: str | None) -> list[tuple[Task, bool]]:
        """The tasks of one store (or all), each with whether it is pending: the pending
        ones first, as start() will schedule them, then the stored ones. Each task once:
        a stored task that a pending one will replace (or keep) is shown as that."""
        with self._lock:
            pending = [(t, c) for t, c in self._pending if store is None or t.store_alias == store]
            aliases = [store] if store is not None else list(self._stores)
        if not pending:  # (always, once started: start() stored them)
            return [(task, False) for alias in aliases for task in self._all_stored(alias)]
        stored = {(alias, task.id): task for alias in aliases for task in self._all_stored(alias)}
        listed: list[tuple[Task, bool]] = []
        now = self.clock.now()
        for task, conflict in pending:
            met = stored.pop((task.store_alias or "default", task.id), None)
            listed.append(self._as_scheduled(task, conflict, met if conflict else None, now))
        listed.extend((task, False) for task in stored.values())
        return listed

    def get_task_page(
        self, search: str, paused: bool | None, offset: int, limit: int, store: str | None
    ) -> tuple[list[Task], int]:
        """A page of :meth:`get_tasks` and how many match (see
        ``BaseStore.get_task_page``): asked of the store when the listing is one store's
        stored tasks, else filtered from the whole listing."""
        from tickwork.stores._task_page import check_page, filter_page

        check_page(search, paused, offset, limit)
        with self._lock:
            pending = any(store is None or t.store_alias == store for t, _ in self._pending)
            aliases = [store] if store is not None else list(self._stores)
        if pending or len(aliases) != 1:
            return filter_page(self.get_tasks(store), search, paused, offset, limit)
        tasks, total = self._lookup_store(aliases[0]).get_task_page(search, paused, offset, limit)
        for task in tasks:
            self._bind(task)
        return tasks, total

    def get_task(self, task_id: str, store: str | None = None) -> Task | None:
        """Return the task with this id, or ``None``. Before start() a pending task is
        shown as it will be scheduled (a copy, with its next run time)."""
        try:
            return self._shown(task_id, store)[0]
        except TaskLookupError:
            return None

    def get_tasks(self, store: str | None = None, tag: str | None = None) -> list[Task]:
        """Return the tasks of one store (or all): before start() the pending ones first,
        as they will be scheduled (copies, with their next run times), then the stored
        ones; each task once. With ``tag``, only the tasks that have it."""
        if tag is None:
            return [task for task, _ in self._listing(store)]
        check_tag(tag)
        with self._lock:
            pending = any(store is None or t.store_alias == store for t, _ in self._pending)
        if pending:
            return [task for task, _ in self._listing(store) if tag in task.tags]
        return [task for task, _ in self._tagged(tag, store)]

    def _tagged(self, tag: str, store: str | None) -> list[tuple[Task, str | None]]:
        """The tasks with ``tag`` and their store aliases (``None``: pending): the pending
        ones, then one ``get_tasks_by_tag`` call per store."""
        check_tag(tag)
        with self._lock:
            found: list[tuple[Task, str | None]] = [
                (task, None)
                for task, _ in self._pending
                if tag in task.tags and (store is None or task.store_alias == store)
            ]
            aliases = [store] if store is not None else list(self._stores)
        for alias in aliases:
            for task in self._lookup_store(alias).get_tasks_by_tag(tag):
                self._bind(task)
                found.append((task, alias))
        return found

    def _pending_tagged(self, tag: str, store: str | None) -> tuple[list[Task], list[str]]:
        """The pending tasks with ``tag`` (of ``store``, or all) and the aliases of the
        stores to act on."""
        check_tag(tag)
        with self._lock:
            pending = [
                task
                for task, _ in self._pending
                if tag in task.tags and (store is None or task.store_alias == store)
            ]
            aliases = [store] if store is not None else list(self._stores)
        for alias in aliases:
            self._lookup_store(alias)  # (an unknown alias is refused before any change)
        return pending, aliases

    def _report_by_tag(
        self, code: int, action: str, tag: str, alias: str, tasks: list[Task]
    ) -> None:
        """Bind the tasks a store changed by tag, log them and emit ``code`` for each."""
        for task in tasks:
            self._bind(task)
            self.logger.debug("task %r %s (tag %r) in store %r", task.id, action, tag, alias)
        if tasks:
            self.logger.info("%d task(s) %s by tag %r in store %r", len(tasks), action, tag, alias)
        if self._events.wants(code):
            for task in tasks:
                self._events.emit(TaskEvent(code, task.id, alias))

    def _forget_removed(self, alias: str, tasks: list[Task]) -> None:
        for task in tasks:
            self._shutdown_tasks.discard((alias, task.id))
            self._planner.held.discard((alias, task.id))

    def pause_tasks(self, tag: str, store: str | None = None) -> int:
        """Pause every task with ``tag`` (a ``TASK_MODIFIED`` event each, as
        :meth:`pause_task` gives); returns how many were paused. Tasks already paused
        are left as they are and not counted. Each store pauses its tasks in one
        operation (``BaseStore.pause_tasks_by_tag``)."""
        pending, aliases = self._pending_tagged(tag, store)
        count = 0
        for task in pending:
            if task.next_run_time is not None:
                with contextlib.suppress(TaskLookupError):  # started meanwhile: stored
                    self.update_task(task.id, None, next_run_time=None)
                    count += 1
        for alias in aliases:
            with self._store_lock(alias):
                paused = self._lookup_store(alias).pause_tasks_by_tag(tag)
                # a run held by a pause is no longer asked for (as update_task does)
                self._planner.held.difference_update((alias, task.id) for task in paused)
            self._report_by_tag(TASK_MODIFIED, "paused", tag, alias, paused)
            count += len(paused)
        return count

    def resume_tasks(self, tag: str, store: str | None = None) -> int:
        """Resume every paused task with ``tag`` (each as :meth:`resume_task` does, with
        its ``TASK_MODIFIED`` event; a task whose trigger is finished is removed, with
        its ``TASK_REMOVED`` event); returns how many were resumed or removed so. Each
        store does it in one operation (``BaseStore.resume_tasks_by_tag``)."""
        pending, aliases = self._pending_tagged(tag, store)
        count = 0
        for task in pending:
            if task.next_run_time is None and not isinstance(task.trigger, ShutdownTrigger):
                with contextlib.suppress(TaskLookupError):
                    self.resume_task(task.id, None)
                    count += 1
        now = self.clock.now()

        def next_run_time(task: Task) -> datetime | Literal[False] | None:
            if isinstance(task.trigger, ShutdownTrigger):
                return False  # never due by design: not a paused task
            return task.trigger.get_next_trigger_time(self.timezone, None, now)

        for alias in aliases:
            with self._store_lock(alias):
                resumed, removed = self._lookup_store(alias).resume_tasks_by_tag(tag, next_run_time)
                self._planner.held.difference_update((alias, task.id) for task in resumed)
                self._forget_removed(alias, removed)
            self._report_by_tag(TASK_MODIFIED, "resumed", tag, alias, resumed)
            self._report_by_tag(
                TASK_REMOVED, "removed (their triggers are finished)", tag, alias, removed
            )
            count += len(resumed) + len(removed)
            times = [task.next_run_time for task in resumed if task.next_run_time is not None]
            if times:
                self._wakeup_for(min(times))
        return count

    def remove_tasks(self, tag: str, store: str | None = None) -> int:
        """Remove every task with ``tag`` (each with its ``TASK_REMOVED`` event); returns
        how many were removed. Each store removes them in one operation
        (``BaseStore.remove_tasks_by_tag``)."""
        pending, aliases = self._pending_tagged(tag, store)
        count = 0
        for task in pending:
            with contextlib.suppress(TaskLookupError):
                self.delete_task(task.id, None)
                count += 1
        for alias in aliases:
            with self._store_lock(alias):
                removed = self._lookup_store(alias).remove_tasks_by_tag(tag)
                self._forget_removed(alias, removed)
            self._report_by_tag(TASK_REMOVED, "removed", tag, alias, removed)
            count += len(removed)
        return count

    def update_task(self, task_id: str, store: str | None = None, **changes: Any) -> Task:
        """Change fields of a task (anything but ``id``). A new ``trigger`` (instance or
        alias) recomputes the next run time unless ``next_run_time`` is given too."""
        if "trigger" in changes and not isinstance(changes["trigger"], BaseTrigger):
            changes["trigger"] = self._make_trigger(changes["trigger"], {})
        task, alias = self._find(task_id, store)
        if alias is None:
            _apply_checked(task, changes, self.check_modules)
            return task
        with self._store_lock(alias):
            task, _ = self._find(task_id, alias)
            if "trigger" in changes and "next_run_time" not in changes:
                changes["next_run_time"] = changes["trigger"].get_next_trigger_time(
                    self.timezone, None, self.clock.now()
                )
            if "executor" in changes and changes["executor"] not in self._executors:
                raise UnknownAliasError("executor", changes["executor"], list(self._executors))
            _apply_checked(task, changes, self.check_modules)
            target = self._lookup_store(alias)
            check_leader_only(task, alias, target, self.lock_path)
            target.validate_task(task)
            target.update_task(task)
            if "next_run_time" in changes:  # a run held by a pause is no longer asked for
                self._planner.held.discard((alias, task_id))
        if self._events.wants(TASK_MODIFIED):
            self._events.emit(TaskEvent(TASK_MODIFIED, task.id, alias))
        self._wakeup_for(task.next_run_time)
        return task

    def reschedule_task(
        self,
        task_id: str,
        store: str | None = None,
        trigger: BaseTrigger | str | None = None,
        **trigger_args: Any,
    ) -> Task:
        """Give a task a new trigger and the next run time it computes."""
        new_trigger = self._make_trigger(trigger, trigger_args)
        next_run_time = new_trigger.get_next_trigger_time(self.timezone, None, self.clock.now())
        return self.update_task(task_id, store, trigger=new_trigger, next_run_time=next_run_time)

    def pause_task(self, task_id: str, store: str | None = None) -> Task:
        """Keep the task but stop running it (``next_run_time`` becomes ``None``)."""
        return self.update_task(task_id, store, next_run_time=None)

    def resume_task(self, task_id: str, store: str | None = None) -> Task | None:
        """Give a paused task its next run time from now; a task whose trigger is finished
        is deleted and ``None`` returned."""
        task, _ = self._find(task_id, store)
        next_run_time = task.trigger.get_next_trigger_time(self.timezone, None, self.clock.now())
        if next_run_time is None and not isinstance(task.trigger, ShutdownTrigger):
            self.delete_task(task_id, store)
            return None
        return self.update_task(task_id, store, next_run_time=next_run_time)

    def delete_task(self, task_id: str, store: str | None = None) -> None:
        """Remove a task. Raises ``TaskLookupError`` for an unknown id."""
        task, alias = self._find(task_id, store)
        if alias is None:
            with self._lock:
                self._pending = [(t, r) for t, r in self._pending if t is not task]
        else:
            with self._store_lock(alias):
                self._lookup_store(alias).remove_task(task_id)
            self._shutdown_tasks.discard((alias, task_id))
            self._planner.held.discard((alias, task_id))
        if self._events.wants(TASK_REMOVED):
            self._events.emit(TaskEvent(TASK_REMOVED, task_id, alias))

    def remove_all_tasks(self, store: str | None = None) -> None:
        """Remove every task of one store, or of all stores and the pending list."""
        with self._lock:
            self._pending = [
                (t, r) for t, r in self._pending if store is not None and t.store_alias != store
            ]
            aliases = [store] if store is not None else list(self._stores)
        for alias in aliases:
            with self._store_lock(alias):
                self._lookup_store(alias).remove_all_tasks()
            self._shutdown_tasks = {key for key in self._shutdown_tasks if key[0] != alias}
            self._planner.held.difference_update([k for k in self._planner.held if k[0] == alias])
        self._events.emit(SchedulerEvent(ALL_TASKS_REMOVED, store))

    def run_task(self, task_id: str, store: str | None = None) -> Task:
        """Run a task once now, outside its schedule (its next run time is unchanged),
        also while the scheduler is paused: a pause holds the schedule, and this is a
        command, not part of it. Raises ``MaxInstancesReachedError`` when it is already
        running ``max_instances`` times."""
        if not self.running:
            raise SchedulerNotRunningError("run_task needs a running scheduler")
        task, _ = self._find(task_id, store)
        self._dispatcher.submit(task, [self.clock.now()], raise_max_instances=True)
        return task

    def request_run(self, task_id: str, store: str | None, owner: str) -> str:
        """Ask for one run of ``task_id`` now, through its store, and return the run's
        id. The request is written as a pending run due now (the durable record a
        pending retry uses), so whichever scheduler sharing the store finds it first
        runs it, exactly once, with its usual rules, events and run record; the
        schedule is not touched. A process that only administers a store (started
        paused, running nothing) reaches its fleet this way; ``run_task`` instead runs
        the task in this process."""
        if not self.running:
            raise SchedulerNotRunningError("request_run needs a started scheduler")
        task, alias = self._find(task_id, store)
        if alias is None:
            raise SchedulerNotRunningError(
                f"task {task_id!r} is not stored yet: it is added when the scheduler starts"
            )
        with self._lock:
            # One microsecond apart from the previous request: every run has its own id.
            now = self.clock.now()
            if self._last_request is not None and now <= self._last_request:
                now = self._last_request + timedelta(microseconds=1)
            self._last_request = now
        self._stores[alias].retry_runs(owner, [PendingRetry(task, now, 1, now)])
        self._wakeup_for(now)
        self.logger.info("run of task %r requested through store %r", task_id, alias)
        return make_run_id(task_id, now)

    def find_for_run(self, task_id: str) -> Task:
        """The stored task ``task_id`` (in any store), for a run started by a command;
        raises ``SchedulerNotRunningError`` unless the scheduler runs (or is paused)."""
        if not self.running:
            raise SchedulerNotRunningError("running a task now needs a started scheduler")
        task, _ = self._find(task_id, None)
        return task

    # -- inspection ----------------------------------------------------------------------------

    def preview_task_runs(
        self, task_id: str, count: int = 5, store: str | None = None
    ) -> list[datetime]:
        """The task's next ``count`` fire times (without jitter's randomness settled);
        before start() those it will have when the scheduler starts now."""
        task, _ = self._shown(task_id, store)
        times: list[datetime] = []
        next_time = task.next_run_time
        now = self.clock.now()
        while next_time is not None and len(times) < count:
            times.append(next_time)
            next_time = task.trigger.get_next_trigger_time(self.timezone, next_time, now)
        return times

    def get_task_info(self, task_id: str, store: str | None = None) -> dict[str, Any]:
        """A plain-dict summary of one task, for dashboards and logs (before start(), as
        it will be scheduled)."""
        task, pending = self._shown(task_id, store)
        return _task_info(task, pending)

    def get_task_infos(self, store: str | None = None) -> list[dict[str, Any]]:
        """:meth:`get_task_info` for every task, in :meth:`get_tasks` order (built from
        one listing, not one look-up per task)."""
        return [_task_info(task, pending) for task, pending in self._listing(store)]


def _apply_checked(
    task: Task, changes: dict[str, Any], check: Callable[[Task], None] | None = None
) -> None:
    """``task._apply(changes)``, refused whole when the changed task breaks a rule that
    spans fields (a fixed delay with ``max_instances=2``, see ``_spacing.py``) or
    ``check`` (``allowed_modules``) refuses it."""
    probe = task._shallow_copy()
    probe._apply(changes)
    check_spacing(probe)
    if check is not None:
        check(probe)
    task._apply(changes)


def _check_conflict(value: object) -> None:
    """Refuse a ``replace_existing`` that is not one of :data:`Conflict` (say ``"yes"``:
    a truthy string must not quietly mean True)."""
    if value != "keep" or type(value) is not str:
        raise ConfigurationError(
            f"replace_existing must be True, False or 'keep', got {value!r}; True replaces a "
            "stored task with the same id (keeping its schedule when the trigger is the "
            "same), 'keep' keeps the stored task as it is"
        )


def _refuse_trigger_alias_as_function(fn: object) -> None:
    """Raise when ``fn``, given where the function goes, is a trigger alias: the call
    was ``add_task("interval", seconds=5)``, without the function. (Called once adding
    failed: without this the date trigger would be blamed for ``seconds``.)"""
    if type(fn) is str and fn in trigger_registry.aliases():
        raise InvalidTaskError(
            f"{fn!r} is a trigger alias, passed where the function goes: call "
            f"add_task(fn, {fn!r}, ...) with the function first, or use "
            f"@scheduler.add_task(trigger={fn!r}, ...) as a decorator"
        ) from None


def _same_definition(new: Task, stored: Task) -> bool:
    """True when writing ``new`` would change nothing the store keeps (every field, with
    the next run time already taken over from ``stored``)."""
    try:
        ours, theirs = new.__getstate__(), stored.__getstate__()
    except TickworkError:  # a function without a reference (a memory store keeps those)
        return False
    try:
        return bool(ours == theirs)
    except Exception:  # arguments whose == fails (arrays ...): write, to be sure
        return False


def _task_info(task: Task, pending: bool) -> dict[str, Any]:
    return {
        "id": task.id,
        "name": task.name,
        "trigger": repr(task.trigger),
        "executor": task.executor,
        "store": task.store_alias,
        "pending": pending,
        "paused": task.next_run_time is None and not isinstance(task.trigger, ShutdownTrigger),
        "next_run_time": task.next_run_time,
        "coalesce": task.coalesce,
        "max_instances": task.max_instances,
        "mistrigger_grace_time": task.mistrigger_grace_time,
        "timeout": task.timeout,
        "retries": task.retries,
        "leader_only": task.leader_only,
        "tags": sorted(task.tags),
    }


def _noop() -> None:
    """Stands in for a callable when only keyword checks are needed."""
