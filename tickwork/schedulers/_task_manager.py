"""The task manager: add, find, change, run and inspect tasks, and the tasks added
before the scheduler starts. The scheduler's task methods delegate here.

It receives the parts it needs (the plug-ins, the event hub, the dispatcher for
``run_task``, the clock and zone, the defaults) and a few callables into the façade
(its lifecycle state, waking its driver); it never sees the scheduler itself.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any, TypeVar

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
    SchedulerNotRunningError,
    TaskLookupError,
    UnknownAliasError,
)
from tickwork.schedulers._dispatch import Dispatcher
from tickwork.schedulers._events import EventHub
from tickwork.schedulers._plugins import Plugins
from tickwork.schedulers._state import Lifecycle, SchedulerState
from tickwork.stores.base import BaseStore
from tickwork.tasks import UNSET, Task
from tickwork.triggers import build_trigger
from tickwork.triggers.base import BaseTrigger
from tickwork.triggers.date import DateTrigger
from tickwork.triggers.shutdown import ShutdownTrigger

__all__ = ["TaskManager"]

_STOPPED = SchedulerState.STOPPED

F = TypeVar("F", bound=Callable[..., Any])


class TaskManager:
    """add_task, get_task(s), update/reschedule/pause/resume/delete/run, inspection."""

    def __init__(
        self,
        plugins: Plugins,
        events: EventHub,
        dispatcher: Dispatcher,
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
        self._pending: list[tuple[Task, bool]] = []
        #: (store alias, task id) of the tasks with a shutdown trigger.
        self._shutdown_tasks: set[tuple[str, str]] = set()

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
        executor (start() checks before anything starts)."""
        plugins = self._plugins
        for task, _ in self._pending:
            if task.executor not in plugins.executors:
                raise UnknownAliasError("executor", task.executor, list(plugins.executors))
            if (task.store_alias or "default") not in plugins.stores:
                raise UnknownAliasError("store", task.store_alias, list(plugins.stores))

    def take_pending(self) -> list[tuple[Task, bool]]:
        """Hand over the tasks added before start (under the scheduler's lock)."""
        pending, self._pending = self._pending, []
        return pending

    def restore_pending(self, unstored: list[tuple[Task, bool]]) -> None:
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
        replace_existing: bool,
        trigger_args: dict[str, Any],
    ) -> Task | Callable[[F], F]:
        """:meth:`BaseScheduler.add_task`, its keywords passed positionally (this runs on
        every add, and keyword matching costs)."""
        if fn_or_task is not None and not isinstance(fn_or_task, Task):
            # The common call, spelt out: no options dict, no second pass over them.
            task = Task.__new__(Task)
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
            )
            return self._add(task, store or "default", replace_existing)
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
        }
        if fn_or_task is None:

            def decorator(fn: F) -> F:
                task = self._new_task(fn, trigger, trigger_args, options)
                qualname = getattr(fn, "__qualname__", "<")
                if "<" not in qualname:
                    # The decorated name is bound in its module only after the decorator
                    # returns, so the reference cannot be checked by importing it yet;
                    # it is checked when a store loads the task.
                    task._set_shared(fn_ref=f"{fn.__module__}:{qualname}")
                self._add(task, store or "default", replace_existing)
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
        task.store_alias = store_alias
        running = self._life.state is not _STOPPED
        if running and task.executor not in self._executors:
            raise UnknownAliasError("executor", task.executor, list(self._executors))
        target = self._stores.get(store_alias)
        if target is None and (running or store_alias != "default"):
            raise UnknownAliasError("store", store_alias, list(self._stores))
        if target is not None and not running:
            # A pending task is only stored at start(): check now that the store can keep
            # it. A running scheduler hands it to the store at once, and the store refuses
            # it before writing anything (BaseStore contract), so it is not encoded twice.
            target.validate_task(task)

    def _add(self, task: Task, store_alias: str, replace_existing: bool) -> Task:
        self._prepare(task, store_alias)
        if self._life.state is _STOPPED:
            # Under the lock: start() moves the pending tasks and then sets the state, both
            # under it, so a task is either moved or stored, never dropped in between. A
            # running scheduler needs no lock to know it is running.
            with self._lock:
                if self._life.state is _STOPPED:
                    self._add_pending(task, replace_existing)
                    return task
        self.store_task(task, replace_existing)
        return task

    def _add_pending(self, task: Task, replace_existing: bool) -> None:
        with self._lock:
            for index, (other, _) in enumerate(self._pending):
                if other.id == task.id:
                    if not replace_existing:
                        raise ConflictIdError(task.id)
                    del self._pending[index]
                    break
            self._pending.append((task, replace_existing))
        self.logger.debug("task %r added; it is scheduled when the scheduler starts", task.id)

    def _fill_next_run_time(self, task: Task, now: datetime) -> None:
        if task.next_run_time is UNSET:
            task.next_run_time = task.trigger.get_next_trigger_time(self.timezone, None, now)

    def store_task(self, task: Task, replace_existing: bool) -> None:
        """Add a prepared task to its (running) store, replacing a same-id one if asked."""
        if task.next_run_time is UNSET:
            task.next_run_time = task.trigger.get_next_trigger_time(
                self.timezone, None, self.clock.now()
            )
        alias = task.store_alias or "default"
        target = self._stores.get(alias)
        if target is None:
            raise UnknownAliasError("store", alias, list(self._stores))
        with self._store_lock(alias):
            try:
                target.add_task(task)
            except ConflictIdError:
                if not replace_existing:
                    raise
                target.update_task(task)
        self._after_store(task, alias)
        self._wakeup_for(task.next_run_time)

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
            found = target.lookup_task(task_id)
            if found is not None:
                self._bind(found)
                return found, alias
        raise TaskLookupError(task_id, store)

    def get_task(self, task_id: str, store: str | None = None) -> Task | None:
        """Return the task with this id, or ``None``."""
        try:
            return self._find(task_id, store)[0]
        except TaskLookupError:
            return None

    def get_tasks(self, store: str | None = None) -> list[Task]:
        """Return the tasks of one store (or all), pending ones first, then by next run
        time, paused last."""
        with self._lock:
            tasks = [t for t, _ in self._pending if store is None or t.store_alias == store]
            aliases = [store] if store is not None else list(self._stores)
        for alias in aliases:
            for task in self._lookup_store(alias).get_all_tasks():
                self._bind(task)
                tasks.append(task)
        return tasks

    def update_task(self, task_id: str, store: str | None = None, **changes: Any) -> Task:
        """Change fields of a task (anything but ``id``). A new ``trigger`` (instance or
        alias) recomputes the next run time unless ``next_run_time`` is given too."""
        if "trigger" in changes and not isinstance(changes["trigger"], BaseTrigger):
            changes["trigger"] = self._make_trigger(changes["trigger"], {})
        task, alias = self._find(task_id, store)
        if alias is None:
            task._apply(changes)
            return task
        with self._store_lock(alias):
            task, _ = self._find(task_id, alias)
            if "trigger" in changes and "next_run_time" not in changes:
                changes["next_run_time"] = changes["trigger"].get_next_trigger_time(
                    self.timezone, None, self.clock.now()
                )
            if "executor" in changes and changes["executor"] not in self._executors:
                raise UnknownAliasError(
                    "executor", changes["executor"], list(self._executors)
                )
            task._apply(changes)
            target = self._lookup_store(alias)
            target.validate_task(task)
            target.update_task(task)
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
        self._events.emit(SchedulerEvent(ALL_TASKS_REMOVED, store))

    def run_task(self, task_id: str, store: str | None = None) -> Task:
        """Run a task once now, outside its schedule (its next run time is unchanged).
        Raises ``MaxInstancesReachedError`` when it is already running ``max_instances``
        times."""
        if not self.running:
            raise SchedulerNotRunningError("run_task needs a running scheduler")
        task, _ = self._find(task_id, store)
        self._dispatcher.submit(task, [self.clock.now()], raise_max_instances=True)
        return task

    # -- inspection ----------------------------------------------------------------------------

    def preview_task_runs(
        self, task_id: str, count: int = 5, store: str | None = None
    ) -> list[datetime]:
        """The task's next ``count`` fire times (without jitter's randomness settled)."""
        task, _ = self._find(task_id, store)
        times: list[datetime] = []
        next_time = task.next_run_time
        now = self.clock.now()
        while next_time is not None and len(times) < count:
            times.append(next_time)
            next_time = task.trigger.get_next_trigger_time(self.timezone, next_time, now)
        return times

    def get_task_info(self, task_id: str, store: str | None = None) -> dict[str, Any]:
        """A plain-dict summary of one task, for dashboards and logs."""
        task, alias = self._find(task_id, store)
        return _task_info(task, pending=alias is None)

    def get_task_infos(self, store: str | None = None) -> list[dict[str, Any]]:
        """:meth:`get_task_info` for every task, in :meth:`get_tasks` order (built from
        one listing, not one look-up per task)."""
        with self._lock:
            pending = {id(task) for task, _ in self._pending}
        return [_task_info(task, pending=id(task) in pending) for task in self.get_tasks(store)]


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
    }


def _noop() -> None:
    """Stands in for a callable when only keyword checks are needed."""
