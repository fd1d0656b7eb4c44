"""The scheduler core: configuration, plug-ins, task management and the processing pass.

The variants (:mod:`tickwork.schedulers.asyncio`, :mod:`tickwork.schedulers.background`)
only decide *how to wait* between passes and *where* store I/O happens; everything that
decides what runs when lives here, once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any, TypeVar, overload
from uuid import uuid4

from tickwork.clock import Clock, SystemClock
from tickwork.events import (
    ALL_EVENTS,
    EXECUTOR_ADDED,
    EXECUTOR_REMOVED,
    SCHEDULER_PAUSED,
    SCHEDULER_RESUMED,
    SCHEDULER_SHUTDOWN,
    SCHEDULER_STARTED,
    STORE_ADDED,
    STORE_REMOVED,
    SchedulerEvent,
)
from tickwork.exceptions import (
    ConfigurationError,
    SchedulerAlreadyRunningError,
    SchedulerNotRunningError,
    UnknownAliasError,
)
from tickwork.executors import executor_registry
from tickwork.executors.base import BaseExecutor
from tickwork.locks import FileLockProtected, format_lock_path
from tickwork.schedulers._pass import StoreProcessor
from tickwork.schedulers._state import SchedulerState
from tickwork.schedulers._task_api import TaskAPI
from tickwork.schedulers.asgi import ASGIApp, LifespanWrapper
from tickwork.stores import store_registry
from tickwork.stores.base import BaseStore
from tickwork.stores.memory import MemoryStore
from tickwork.tasks import UNSET, Task
from tickwork.triggers.shutdown import ShutdownTrigger
from tickwork.utils import local_timezone, timestamp, to_timezone

__all__ = ["BaseScheduler", "SchedulerState"]

F = TypeVar("F", bound=Callable[..., Any])
Listener = Callable[[Any], None]

#: Run rules for tasks that don't say otherwise. The grace time is measured when the
#: scheduler *picks the run up*, not when an executor gets round to it, so a burst that
#: queues in the executor is not reported as missed.
DEFAULT_TASK_DEFAULTS: dict[str, Any] = {
    "coalesce": True,
    "max_instances": 1,
    "mistrigger_grace_time": 1.0,
}


class BaseScheduler(TaskAPI, ABC):
    """Everything schedulers share; use one of the concrete variants.

    Keywords (all optional):

    * ``stores``: ``{alias: BaseStore instance or {"type": "memory"|"file"|"sqlalchemy"|"redis", **options}}``;
      a ``default`` memory store exists when none is given.
    * ``executors``: the same for executors (``"asyncio"``, ``"threadpool"``, ``"processpool"``,
      ``"debug"``); the variant supplies the ``default`` one.
    * ``task_defaults``: ``coalesce``, ``max_instances``, ``mistrigger_grace_time`` for
      tasks that don't set them (defaults: True, 1, 1.0 s).
    * ``timezone``: the zone for triggers without one (default: the local zone).
    * ``lock_path``: a file-lock path template; see :mod:`tickwork.locks`.
    * ``logger_name``, ``identity`` (this scheduler's name in a fleet), ``clock``.
    * ``batch_size``: how many due tasks one step of a pass handles before letting the
      event loop (or other threads) run.
    """

    def __init__(
        self,
        *,
        stores: Mapping[str, BaseStore | Mapping[str, Any]] | None = None,
        executors: Mapping[str, BaseExecutor | Mapping[str, Any]] | None = None,
        task_defaults: Mapping[str, Any] | None = None,
        timezone: str | tzinfo | None = None,
        lock_path: str | None = None,
        logger_name: str | None = None,
        identity: str | None = None,
        clock: Clock | None = None,
        batch_size: int = 256,
    ) -> None:
        self.logger = logging.getLogger(logger_name or "tickwork.scheduler")
        self.timezone: tzinfo = to_timezone(timezone) or local_timezone()
        self.clock: Clock = clock or SystemClock()
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}-{uuid4().hex[:8]}"
        if lock_path is not None:
            format_lock_path(lock_path)  # an unknown placeholder fails here, by name
        self.lock_path = lock_path
        #: Seconds between attempts of a standby scheduler to take a store's lock.
        self.lock_retry_interval = 1.0
        self._guards: dict[str, FileLockProtected] = {}
        self._standby = False
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be at least 1, got {batch_size!r}")
        self.batch_size = batch_size
        self.task_defaults = dict(DEFAULT_TASK_DEFAULTS)
        self._set_task_defaults(task_defaults or {})
        self.state = SchedulerState.STOPPED
        self._lock = threading.RLock()
        self._stores: dict[str, BaseStore] = {}
        self._executors: dict[str, BaseExecutor] = {}
        self._store_locks: dict[str, threading.RLock] = {}
        self._listeners: list[tuple[Listener, int]] = []
        self._listener_mask = 0
        self._pending: list[tuple[Task, bool]] = []
        self._self_ref = weakref.ref(self)
        self._shutdown_tasks: set[tuple[str, str]] = set()
        self._processor = StoreProcessor(self)
        #: The timestamp of the earliest time the driver currently plans to wake at (None:
        #: not sleeping on a deadline). Adding a later task then needs no wake-up at all.
        self._planned_wakeup: float | None = None
        for alias, store in (stores or {}).items():
            self.add_store(store, alias)
        for alias, executor in (executors or {}).items():
            self.add_executor(executor, alias)
        subscribe = getattr(self.clock, "subscribe", None)
        if subscribe is not None:
            subscribe(self._wakeup_from_clock)

    def _set_task_defaults(self, overrides: Mapping[str, Any]) -> None:
        unknown = set(overrides) - set(DEFAULT_TASK_DEFAULTS)
        if unknown:
            raise ConfigurationError(
                f"unknown task_defaults key(s) {sorted(unknown)}; known: {sorted(DEFAULT_TASK_DEFAULTS)}"
            )
        probe = Task(_noop, trigger=ShutdownTrigger(), **overrides)  # validates the values
        self.task_defaults.update(
            {key: getattr(probe, key) for key in overrides if getattr(probe, key) is not UNSET}
        )

    # -- state -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while started (also when paused)."""
        return self.state != SchedulerState.STOPPED

    def _check_not_running(self) -> None:
        if self.state != SchedulerState.STOPPED:
            raise SchedulerAlreadyRunningError(
                f"{type(self).__name__} is already running (state {self.state.name}); "
                "shut it down before starting it again"
            )

    def _start_core(self, paused: bool) -> None:
        """Start plug-ins, schedule tasks added before start, and set the state. The
        variant has prepared its event loop/thread and starts its driver afterwards."""
        with self._lock:
            self._check_not_running()
            if "default" not in self._stores:
                self.add_store(MemoryStore(), "default")
            if "default" not in self._executors:
                self.add_executor(self._create_default_executor(), "default")
            for task, _ in self._pending:
                # Checked before anything starts: a typo fails start(), by name, and no
                # task is lost.
                if task.executor not in self._executors:
                    raise UnknownAliasError("executor", task.executor, list(self._executors))
                if (task.store_alias or "default") not in self._stores:
                    raise UnknownAliasError("store", task.store_alias, list(self._stores))
            for alias, executor in self._executors.items():
                executor.start(self, alias)
            for alias, store in self._stores.items():
                store.start(alias)
            if self.lock_path is not None:
                # Checked here so a missing or read-only directory fails start(), by name.
                self._guards = {
                    alias: FileLockProtected(self.lock_path, alias) for alias in self._stores
                }
            self.state = SchedulerState.PAUSED if paused else SchedulerState.RUNNING
            pending, self._pending = self._pending, []
        stored = 0
        try:
            for task, replace_existing in pending:
                self._store_task(task, replace_existing)
                stored += 1
        except BaseException:
            self._abort_start(pending[stored:])
            raise
        self.logger.info("scheduler started (%s)", self.identity)
        self._dispatch_event(SchedulerEvent(SCHEDULER_STARTED))

    def _abort_start(self, unstored: list[tuple[Task, bool]]) -> None:
        """Undo a start that failed while storing pending tasks (e.g. a persisted task
        with the same id): stop what was started and keep the tasks not yet stored, so
        fixing the cause and calling start() again loses nothing."""
        with self._lock:
            self.state = SchedulerState.STOPPED
            self._pending = unstored + self._pending
        for executor in self._executors.values():
            try:
                executor.shutdown(wait=False)
            except Exception:
                self.logger.exception("executor %r failed to shut down", executor.alias)
        for guard in self._guards.values():
            guard.release()
        self._guards = {}
        for store in self._stores.values():
            try:
                store.shutdown()
            except Exception:
                self.logger.exception("store %r failed to shut down", store.alias)

    def _shutdown_tasks_to_run(self) -> list[Task]:
        tasks = []
        for store_alias, task_id in sorted(self._shutdown_tasks):
            store = self._stores.get(store_alias)
            task = store.lookup_task(task_id) if store else None
            if task is not None:
                tasks.append(task)
        return tasks

    def _stop_processing(self) -> None:
        """First step of every shutdown: no pass starts and no run is dispatched after it."""
        with self._lock:
            if self.state == SchedulerState.STOPPED:
                raise SchedulerNotRunningError()
            self.state = SchedulerState.STOPPED
        self._planned_wakeup = None

    def _called_from_own_run(self) -> bool:
        """True when the caller is one of this scheduler's runs: a shutdown with ``wait``
        must then not wait for the runs to finish in the caller, or it waits for itself."""
        return any(executor.runs_caller() for executor in list(self._executors.values()))

    def _run_shutdown_tasks(self) -> None:
        """Send the shutdown-trigger tasks to their executors. Variants call it after the
        active runs finished (with ``wait``), so a lifecycle's cleanup never overlaps a
        tick that is still running."""
        now = self.clock.now()
        for task in self._shutdown_tasks_to_run():
            self._processor.submit(task, [now])

    def _stop_executors(self, wait: bool) -> list[Exception]:
        """Shut every executor down. One that fails is logged and the others still stop;
        the failures are returned so the variant re-raises the first once the whole
        shutdown is done (never leaving the scheduler half stopped)."""
        errors: list[Exception] = []
        for alias, executor in list(self._executors.items()):
            try:
                executor.shutdown(wait)
            except Exception as exc:
                self.logger.exception("executor %r failed to shut down", alias)
                errors.append(exc)
        return errors

    async def _stop_executors_async(self, wait: bool) -> list[Exception]:
        """:meth:`_stop_executors` for schedulers on an event loop."""
        errors: list[Exception] = []
        for alias, executor in list(self._executors.items()):
            try:
                await executor.shutdown_async(wait)
            except Exception as exc:
                self.logger.exception("executor %r failed to shut down", alias)
                errors.append(exc)
        return errors

    def _finish_shutdown(self) -> None:
        """Shut the stores down (they keep their tasks), release store locks, and report
        the shutdown."""
        # Runs that ended must be recorded in shared stores before those close.
        self._processor.shutdown()
        for guard in self._guards.values():
            guard.release()
        self._guards = {}
        for store in list(self._stores.values()):
            try:
                store.shutdown()
            except Exception:
                self.logger.exception("store %r failed to shut down", store.alias)
        self.logger.info("scheduler shut down")
        self._dispatch_event(SchedulerEvent(SCHEDULER_SHUTDOWN))

    def pause(self) -> None:
        """Stop running tasks until :meth:`resume`; tasks can still be added and changed."""
        if self.state == SchedulerState.STOPPED:
            raise SchedulerNotRunningError()
        if self.state == SchedulerState.RUNNING:
            self.state = SchedulerState.PAUSED
            self._dispatch_event(SchedulerEvent(SCHEDULER_PAUSED))

    def resume(self) -> None:
        """Resume a paused scheduler; what came due meanwhile follows the misfire rules."""
        if self.state == SchedulerState.STOPPED:
            raise SchedulerNotRunningError()
        if self.state == SchedulerState.PAUSED:
            self.state = SchedulerState.RUNNING
            self._dispatch_event(SchedulerEvent(SCHEDULER_RESUMED))
            self.wakeup()

    # -- what the variants provide -----------------------------------------------------------

    @abstractmethod
    def wakeup(self) -> None:
        """Make the driver run a pass now instead of at its planned time. Thread-safe."""

    @abstractmethod
    def _create_default_executor(self) -> BaseExecutor:
        """The executor a ``default`` alias gets when none was configured."""

    @abstractmethod
    async def shutdown_async(self, wait: bool = True) -> None:
        """Shut down without blocking the calling event loop (ASGI, ``async with``)."""

    @abstractmethod
    async def _start_for_asgi(self) -> None:
        """Start from a coroutine (the ASGI lifespan startup)."""

    @overload
    def asgi(self, app: ASGIApp, *, handle_lifespan: bool = False) -> LifespanWrapper: ...

    @overload
    def asgi(
        self, app: None = None, *, handle_lifespan: bool = False
    ) -> Callable[[ASGIApp], LifespanWrapper]: ...

    def asgi(
        self, app: ASGIApp | None = None, *, handle_lifespan: bool = False
    ) -> LifespanWrapper | Callable[[ASGIApp], LifespanWrapper]:
        """Wrap an ASGI app so this scheduler starts on ``lifespan.startup`` and stops on
        ``lifespan.shutdown`` (see :class:`~tickwork.schedulers.asgi.LifespanWrapper`).
        Without ``app`` it returns a decorator."""
        if app is None:
            return lambda inner: LifespanWrapper(self, inner, handle_lifespan)
        return LifespanWrapper(self, app, handle_lifespan)

    def _stores_to_process(self) -> list[tuple[str, bool]]:
        """(alias, blocking) of every store, for the driver's pass. Clears the planned
        wake-up first: changes made while the pass runs must wake the driver again."""
        self._planned_wakeup = None
        with self._lock:
            stores = [(alias, store.blocking) for alias, store in self._stores.items()]
        self._standby = False
        return [(alias, blocking) for alias, blocking in stores if self._may_process(alias)]

    def _may_process(self, alias: str) -> bool:
        """With ``lock_path``, only the process holding a store's lock processes it; the
        others stand by and try again every ``lock_retry_interval`` seconds."""
        if self.lock_path is None:
            return True
        guard = self._guards.get(alias)
        if guard is None:  # a store added while running
            guard = self._guards[alias] = FileLockProtected(self.lock_path, alias)
        if guard.held:
            return True
        if guard.acquire(blocking=False):
            self.logger.info("took the lock %s: processing store %r", guard.path, alias)
            return True
        self._standby = True
        return False

    def _plan_wakeup(self, next_times: list[datetime | None]) -> float | None:
        """Turn the stores' next times (and their poll intervals) into the seconds the
        driver may sleep; ``None`` means until woken."""
        now = self.clock.now()
        deadline = min((t for t in next_times if t is not None), key=_timestamp, default=None)
        if self._standby:
            retry_at = now + timedelta(seconds=self.lock_retry_interval)
            deadline = retry_at if deadline is None else min(deadline, retry_at, key=_timestamp)
        for store in list(self._stores.values()):
            if store.poll_interval is not None:
                poll_at = now + timedelta(seconds=store.poll_interval)
                deadline = poll_at if deadline is None else min(deadline, poll_at, key=_timestamp)
        self._planned_wakeup = None if deadline is None else deadline.timestamp()
        if deadline is None:
            return None
        return max(0.0, (deadline - now).total_seconds())

    def _run_pass(self) -> float | None:
        """One processing pass on the calling thread; returns the seconds to sleep."""
        if self.state != SchedulerState.RUNNING:
            return None
        now = self.clock.now()
        next_times: list[datetime | None] = []
        for alias, _ in self._stores_to_process():
            while True:
                count, next_time = self._processor.process_store(alias, now)
                if count < self.batch_size or self.state != SchedulerState.RUNNING:
                    break
            next_times.append(next_time)
        return self._plan_wakeup(next_times)

    def _wakeup_from_clock(self) -> None:
        if self.state == SchedulerState.RUNNING:
            self.wakeup()

    def _wakeup_for(self, next_run_time: datetime | None) -> None:
        """Wake the driver if a task now runs earlier than the driver plans to wake."""
        if next_run_time is None or self.state != SchedulerState.RUNNING:
            return
        planned = self._planned_wakeup
        # Timestamps, not datetimes: two datetimes in the same zone compare by wall time
        # and ignore ``fold``, which is wrong in the repeated hour of a DST change.
        if planned is None or timestamp(next_run_time) < planned:
            self.wakeup()

    # -- plug-ins ----------------------------------------------------------------------------

    def add_store(
        self, store: BaseStore | str | Mapping[str, Any], alias: str = "default", **options: Any
    ) -> None:
        """Add a store under ``alias``: an instance, an alias like ``"sqlalchemy"`` with
        ``options``, or a dict ``{"type": ..., **options}``. Started at once if running."""
        instance = _build_plugin(store_registry, BaseStore, store, options)
        with self._lock:
            if alias in self._stores:
                raise ConfigurationError(f"this scheduler already has a store named {alias!r}")
            self._stores[alias] = instance
            self._store_locks[alias] = threading.RLock()
            if self.running:
                instance.start(alias)
        self._dispatch_event(SchedulerEvent(STORE_ADDED, alias))
        if self.running:
            self._wakeup_for(instance.get_next_run_time())

    def remove_store(self, alias: str, shutdown: bool = True) -> None:
        """Remove a store (its tasks stay in it); shut it down unless told not to."""
        with self._lock:
            store = self._stores.pop(alias, None)
            if store is None:
                raise UnknownAliasError("store", alias, list(self._stores))
            self._store_locks.pop(alias, None)
        if shutdown and self.running:
            store.shutdown()
        self._dispatch_event(SchedulerEvent(STORE_REMOVED, alias))

    def add_executor(
        self,
        executor: BaseExecutor | str | Mapping[str, Any],
        alias: str = "default",
        **options: Any,
    ) -> None:
        """Add an executor under ``alias`` (instance, alias string or dict, as for stores)."""
        instance = _build_plugin(executor_registry, BaseExecutor, executor, options)
        with self._lock:
            if alias in self._executors:
                raise ConfigurationError(f"this scheduler already has an executor named {alias!r}")
            self._executors[alias] = instance
            if self.running:
                instance.start(self, alias)
        self._dispatch_event(SchedulerEvent(EXECUTOR_ADDED, alias))

    def remove_executor(self, alias: str, shutdown: bool = True) -> None:
        """Remove an executor; shut it down (waiting for its runs) unless told not to."""
        with self._lock:
            executor = self._executors.pop(alias, None)
            if executor is None:
                raise UnknownAliasError("executor", alias, list(self._executors))
        if shutdown and self.running:
            executor.shutdown()
        self._dispatch_event(SchedulerEvent(EXECUTOR_REMOVED, alias))

    def add_listener(self, callback: Listener, mask: int = ALL_EVENTS) -> None:
        """Call ``callback(event)`` for every event whose code is in ``mask``."""
        with self._lock:
            self._listeners.append((callback, mask))
            self._listener_mask |= mask

    def remove_listener(self, callback: Listener) -> None:
        """Stop calling ``callback`` (every registration of it)."""
        with self._lock:
            self._listeners = [(cb, mask) for cb, mask in self._listeners if cb != callback]
            self._listener_mask = 0
            for _, mask in self._listeners:
                self._listener_mask |= mask

    def _wants(self, code: int) -> bool:
        return bool(self._listener_mask & code)

    def _dispatch_event(self, event: Any) -> None:
        if not self._listener_mask & event.code:
            return
        for callback, mask in list(self._listeners):
            if event.code & mask:
                try:
                    callback(event)
                except Exception:
                    self.logger.exception("listener %r raised on %r", callback, event)

    def get_scheduler_info(self) -> dict[str, Any]:
        """A plain-dict summary of the scheduler."""
        return {
            "type": type(self).__name__,
            "identity": self.identity,
            "state": self.state.name.lower(),
            "timezone": str(self.timezone),
            "stores": {alias: type(s).__name__ for alias, s in self._stores.items()},
            "executors": {alias: type(e).__name__ for alias, e in self._executors.items()},
            "task_defaults": dict(self.task_defaults),
            "pending_tasks": len(self._pending),
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.identity} {self.state.name.lower()}>"


def _timestamp(moment: datetime) -> float:
    return moment.timestamp()


def _noop() -> None:
    """The callable behind the probe task that validates ``task_defaults``."""


def _build_plugin(registry: Any, base: type, value: Any, options: Mapping[str, Any]) -> Any:
    if isinstance(value, base):
        if options:
            raise ConfigurationError(
                f"options {sorted(options)} go with an alias, not with {value!r}"
            )
        return value
    if isinstance(value, str):
        return registry.create(value, dict(options))
    if isinstance(value, Mapping):
        config = {**value, **options}
        kind = config.pop("type", None)
        if kind is None:
            raise ConfigurationError(f"{registry.kind} config {dict(value)!r} needs a 'type' key")
        return registry.create(kind, config)
    raise ConfigurationError(
        f"a {registry.kind} must be a {base.__name__}, an alias or a dict with 'type', got {value!r}"
    )
