"""The scheduler façade: the asyncz-compatible API, the lifecycle, and the wiring of the
parts that do the work.

=====================  ==========================================================
part                   what it does
=====================  ==========================================================
``Plugins``            the stores (each behind a ``StoreGate``) and executors
``EventHub``           listeners and sending events
``TaskManager``        add / find / change / run tasks; tasks added before start
``Planner``            the run rules: which runs start, which are missed (pure)
``Dispatcher``         hands runs to executors; reports runs that did not start
``StoreGate``          one store's access: lock, backoff, batches, set-aside tasks
``PassRunner``         one pass over the gates -> when to wake next
=====================  ==========================================================

The variants (:mod:`tickwork.schedulers.asyncio`, :mod:`tickwork.schedulers.background`)
are drivers: they only sleep and wake around the pass.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import socket
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, tzinfo
from types import SimpleNamespace
from typing import Any, TypeVar, overload
from uuid import uuid4

from tickwork._run_hook import RunHook
from tickwork._run_policy import DEFAULT_POLICY, POLICY_CHECKS
from tickwork._spelling import SCHEDULER_SYNONYMS, either, unknown_names_message
from tickwork._task_fields import RULE_CHECKS
from tickwork._task_owner import TaskOwner
from tickwork.clock import Clock, SystemClock
from tickwork.context import Resources, check_resources
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
    TASK_CANCELLED,
    TASK_ERROR,
    TASK_EXECUTED,
    TASK_TIMEOUT,
    SchedulerEvent,
)
from tickwork.exceptions import (
    ConfigurationError,
    SchedulerAlreadyRunningError,
    SchedulerNotRunningError,
    UnknownAliasError,
)
from tickwork.executors import executor_registry
from tickwork.executors.base import BaseExecutor, ExecutorHost
from tickwork.locks import format_lock_path, lock_path_warnings
from tickwork.runs import OUTCOMES, RunRecord, parse_run_id
from tickwork.schedulers._cancel import Canceller
from tickwork.schedulers._dispatch import Dispatcher
from tickwork.schedulers._events import EventHub, Listener
from tickwork.schedulers._gate import StoreGate
from tickwork.schedulers._history import DEFAULT_RUN_HISTORY, RunRecorder, check_run_history
from tickwork.schedulers._leadership import Leadership
from tickwork.schedulers._pass import PassRunner
from tickwork.schedulers._planner import Planner
from tickwork.schedulers._plugins import Plugins, build_plugin
from tickwork.schedulers._retries import Retrier
from tickwork.schedulers._run_now import RunNow
from tickwork.schedulers._runs import RunKeeper
from tickwork.schedulers._security import StoreSecurity, pop_allowed_modules
from tickwork.schedulers._spacing import RunSpacer
from tickwork.schedulers._state import Lifecycle, SchedulerState
from tickwork.schedulers._task_api import TaskAPI
from tickwork.schedulers._task_manager import PendingTask, TaskManager
from tickwork.schedulers.asgi import ASGIApp, LifespanWrapper
from tickwork.security.policy import SecurityPolicy
from tickwork.stores import store_registry
from tickwork.stores.base import BaseStore, LeaderTerm
from tickwork.stores.memory import MemoryStore
from tickwork.tasks import UNSET
from tickwork.utils import local_timezone, timestamp, to_timezone

__all__ = ["BaseScheduler", "SchedulerState"]

F = TypeVar("F", bound=Callable[..., Any])

#: Run rules for tasks that don't say otherwise. The grace time is measured when the
#: scheduler *picks the run up*, not when an executor gets round to it, so a burst that
#: queues in the executor is not reported as missed.
DEFAULT_TASK_DEFAULTS: dict[str, Any] = {
    "coalesce": True,
    "max_instances": 1,
    "mistrigger_grace_time": 1.0,
    # The run policy (tickwork/_run_policy.py): no time limit, no retries.
    "timeout": DEFAULT_POLICY.timeout,
    "retries": DEFAULT_POLICY.retries,
    "retry_delay": DEFAULT_POLICY.retry_delay,
    "retry_backoff": DEFAULT_POLICY.retry_backoff,
    "retry_on": DEFAULT_POLICY.retry_on,
    "cooldown": DEFAULT_POLICY.cooldown,
    # Leader-only tasks: tickwork/schedulers/_leadership.py.
    "leader_only": DEFAULT_POLICY.leader_only,
}

#: The check of every ``task_defaults`` key.
_DEFAULT_CHECKS = {**RULE_CHECKS, **POLICY_CHECKS}


class BaseScheduler(TaskAPI, ABC):
    """Everything schedulers share; use one of the concrete variants.

    Keywords (all optional):

    * ``stores``: ``{alias: BaseStore instance or {"type": "memory"|"file"|"sqlalchemy"|"redis", **options}}``;
      a ``default`` memory store exists when none is given.
    * ``executors``: the same for executors (``"asyncio"``, ``"threadpool"``, ``"processpool"``,
      ``"debug"``); the variant supplies the ``default`` one.
    * ``task_defaults``: ``coalesce``, ``max_instances``, ``mistrigger_grace_time`` for
      tasks that don't set them (defaults: True, 1, 1.0 s), and ``timeout``,
      ``retries``, ``retry_delay``, ``retry_backoff``, ``retry_on`` (defaults: None, 0,
      1.0 s, 2.0, ``(Exception,)``), ``cooldown`` (default None) and ``leader_only``
      (default False).
    * ``timezone``: the zone for triggers without one (default: the local zone).
    * ``lock_path``: a file-lock path template; see :mod:`tickwork.locks`.
    * ``logger_name``, ``identity`` (this scheduler's name in a fleet), ``clock``.
    * ``batch_size``: how many due tasks one step of a pass handles before letting the
      event loop (or other threads) run.
    * ``run_history``: how long the records of runs are kept (see :meth:`get_runs`):
      ``{"max_age": seconds or None, "max_per_task": count or None}``, by default a week
      and 100 per task; ``None`` keeps no records at all.
    * ``resources``: shared objects for tasks (a dict or ``SimpleNamespace``), see
      :attr:`resources`.
    * ``shutdown_timeout``: seconds a shutdown (also leaving ``with`` / ``async with`` and
      the ASGI lifespan's) waits for running tasks; past it, coroutines are cancelled
      and runs in threads or processes are reported and left behind. ``None`` (the
      default): wait as long as they take.
    * ``signing_key`` (and ``old_signing_keys``, still accepted when reading),
      ``encryption_key`` (32 bytes; ``old_encryption_keys``; the ``tickwork[crypto]``
      extra) and ``allowed_modules`` (also a ``task_defaults`` key): the defences of
      stores others can write to, see ``docs/security.md`` and :meth:`resign_tasks`.
    * ``jobstores``, ``job_defaults``: APScheduler 3's names for ``stores`` and
      ``task_defaults`` (whose ``misfire_grace_time`` key is taken too).
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
        shutdown_timeout: float | None = None,
        run_history: Mapping[str, Any] | None = DEFAULT_RUN_HISTORY,
        resources: Mapping[str, Any] | SimpleNamespace | None = None,
        jobstores: Mapping[str, BaseStore | Mapping[str, Any]] | None = None,
        job_defaults: Mapping[str, Any] | None = None,
        signing_key: bytes | str | None = None,
        old_signing_keys: Iterable[bytes | str] | None = None,
        encryption_key: bytes | None = None,
        old_encryption_keys: Iterable[bytes] | None = None,
        allowed_modules: Iterable[str] | None = None,
    ) -> None:
        # APScheduler 3's spellings, so its configuration ports as it is.
        stores = either("stores", stores, "jobstores", jobstores)
        task_defaults = either("task_defaults", task_defaults, "job_defaults", job_defaults)
        task_defaults, allowed_modules = pop_allowed_modules(task_defaults, allowed_modules)
        security = SecurityPolicy(
            signing_key, old_signing_keys, encryption_key, old_encryption_keys, allowed_modules
        )
        self.logger = logging.getLogger(logger_name or "tickwork.scheduler")
        self.shutdown_timeout = _check_shutdown_timeout(shutdown_timeout)
        self.timezone: tzinfo = to_timezone(timezone) or local_timezone()
        self.clock: Clock = clock or SystemClock()
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}-{uuid4().hex[:8]}"
        if lock_path is not None:
            format_lock_path(lock_path)  # an unknown placeholder fails here, by name
            for warning in lock_path_warnings(lock_path):
                self.logger.warning(warning)
        self.lock_path = lock_path
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be at least 1, got {batch_size!r}")
        self.task_defaults = dict(DEFAULT_TASK_DEFAULTS)
        self._set_task_defaults(task_defaults or {})
        self._life = Lifecycle()
        self._lock = threading.RLock()
        # The one weak reference every task holds (tasks see a TaskOwner, no more).
        self._self_ref: weakref.ref[TaskOwner] = weakref.ref(self)
        # The parts (see the module docstring), each given only what it needs.
        self._events = EventHub(self.logger)
        self._security = StoreSecurity(security, self._events, self.logger)
        self._planner = Planner(self.timezone)
        self._plugins = Plugins(self._make_gate, self.logger)
        history = check_run_history(run_history)
        self._history = (
            None
            if history is None
            else RunRecorder(self._plugins.stores, history, self.identity, self.clock, self.logger)
        )
        if self._history is not None:
            self._events.add(
                self._history.finished,
                TASK_EXECUTED | TASK_ERROR | TASK_TIMEOUT | TASK_CANCELLED,
            )
        self._canceller = Canceller(
            self._plugins.executors, self._plugins.stores, self.identity, self.logger
        )
        self._dispatcher = Dispatcher(
            self._plugins.executors, self._events, self.logger, self._history
        )
        self._dispatcher.resources = check_resources(resources)
        # Moves the next run times of spaced tasks (fixed delay, cooldown) as runs end.
        self._spacer = RunSpacer(self._plugins.gates, self.identity, self.clock, self.logger)
        self._runs = RunKeeper(
            self._plugins.stores,
            self._events,
            self.identity,
            self.clock,
            self.logger,
            self._before_finish,
            self._retry_written,
            self._canceller.requested,
        )
        # Between the executors and the hub: attempts, retries (see _retries.py).
        self._retrier = Retrier(self._events, self._runs, self.clock, self.logger)
        self._dispatcher.retrier = self._retrier
        self._retrier.spacer = self._spacer
        self._run_now = RunNow(self._dispatcher, self._events, self.clock, self.logger)
        self._tasks = TaskManager(
            self._plugins,
            self._events,
            self._dispatcher,
            self._planner,
            self.clock,
            self.timezone,
            self.task_defaults,
            self._self_ref,
            self._lock,
            self._life,
            self._wakeup_for,
            self.logger,
        )
        self._tasks.lock_path = lock_path
        self._tasks.check_modules = (
            None if security.modules is None else security.modules.check_task
        )
        self._leadership = Leadership(
            self._plugins.gates,
            self.identity,
            self._events,
            self._elected,
            self.logger,
            # (Reads the lifecycle, not the scheduler: the thread keeps no reference to it.)
            may_lead=functools.partial(_is_running, self._life),
        )
        self._pass = PassRunner(
            self._plugins.gates,
            self.clock,
            batch_size,
            self._is_running,
            self._tasks.forget_removed,
            self._wakeup_for,
            self.logger,
        )
        for alias, store in (stores or {}).items():
            self.add_store(store, alias)
        for alias, executor in (executors or {}).items():
            self.add_executor(executor, alias)
        subscribe = getattr(self.clock, "subscribe", None)
        if subscribe is not None:
            subscribe(self._wakeup_from_clock)

    def _before_finish(self) -> set[str]:
        """What must be written before the records of ended runs leave a shared store:
        spaced tasks' next run times, then the run history (see RunKeeper._flush); the
        aliases of the stores where that failed."""
        unwritten = self._spacer.flush()
        if self._history is not None:
            unwritten |= self._history.flush()
        return unwritten

    def _make_gate(self, alias: str, store: BaseStore) -> StoreGate:
        self._security.protect(alias, store)
        return StoreGate(
            alias,
            store,
            self._planner,
            self._dispatcher,
            self._runs,
            self._events,
            self.identity,
            self.logger,
        )

    @property
    def resources(self) -> Resources:
        """The application's shared objects for tasks (a DB pool, an HTTP client), given
        as ``resources=`` or set as attributes (``scheduler.resources.db = pool``); a
        task gets them through a parameter annotated :class:`~tickwork.TaskContext`
        (see :mod:`tickwork.context`). Never stored or serialised."""
        return self._dispatcher.resources

    @resources.setter
    def resources(self, value: Mapping[str, Any] | SimpleNamespace | None) -> None:
        self._dispatcher.resources = check_resources(value)

    @property
    def state(self) -> SchedulerState:
        """Where the scheduler is in its life: stopped, running or paused."""
        return self._life.state

    @state.setter
    def state(self, state: SchedulerState) -> None:
        self._life.state = state

    def _is_running(self) -> bool:
        return self.state is SchedulerState.RUNNING

    def _executor_host(self) -> ExecutorHost:
        """What executors are started with (the asyncio variant adds its loop)."""
        return _Host(self._events, self._retrier, type(self).__name__)

    @property
    def batch_size(self) -> int:
        """How many due tasks one step of a pass handles before letting the event loop
        (or other threads) run."""
        return self._pass.batch_size

    @property
    def lock_retry_interval(self) -> float:
        """Seconds between attempts of a standby scheduler to take a store's lock."""
        return self._pass.lock_retry_interval

    @lock_retry_interval.setter
    def lock_retry_interval(self, seconds: float) -> None:
        self._pass.lock_retry_interval = seconds

    @property
    def _planned_wakeup(self) -> float | None:
        return self._pass.planned_wakeup

    @_planned_wakeup.setter
    def _planned_wakeup(self, value: float | None) -> None:
        self._pass.planned_wakeup = value

    def _set_task_defaults(self, overrides: Mapping[str, Any]) -> None:
        if "misfire_grace_time" in overrides:  # APScheduler 3's name for the key
            overrides = dict(overrides)
            key = SCHEDULER_SYNONYMS["misfire_grace_time"]
            overrides[key] = either(
                key,
                overrides.get(key, UNSET),
                "misfire_grace_time",
                overrides.pop("misfire_grace_time"),
                UNSET,
            )
        unknown = [key for key in overrides if key not in DEFAULT_TASK_DEFAULTS]
        if unknown:
            raise ConfigurationError(
                unknown_names_message("task_defaults", unknown, DEFAULT_TASK_DEFAULTS)
            )
        # The same checks a task's own values go through (tickwork/_task_fields.py).
        self.task_defaults.update(
            {
                key: _DEFAULT_CHECKS[key](value)
                for key, value in overrides.items()
                if value is not UNSET
            }
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
        plugins = self._plugins
        with self._lock:
            self._check_not_running()
            if "default" not in plugins.stores:
                self.add_store(MemoryStore(), "default")
            if "default" not in plugins.executors:
                self.add_executor(self._create_default_executor(), "default")
            # Checked before anything starts: a typo fails start(), by name, and no task
            # is lost.
            self._tasks.check_pending_aliases()
            try:
                plugins.start(self._executor_host(), self.lock_path)
            except BaseException:
                self._stop_plugins()
                raise
            self.state = SchedulerState.PAUSED if paused else SchedulerState.RUNNING
            pending = self._tasks.take_pending()
            self._leadership.start()
        stored = 0
        try:
            for task, replace_existing in pending:
                # (A stored task with the same id keeps its schedule, or is kept, as
                # replace_existing says: TaskManager.store_task.)
                self._tasks.store_task(task, replace_existing)
                stored += 1
        except BaseException:
            self._abort_start(pending[stored:])
            raise
        self.logger.info("scheduler started (%s)", self.identity)
        self._events.emit(SchedulerEvent(SCHEDULER_STARTED))

    @property
    def is_leader(self) -> bool:
        """True while this scheduler leads the schedulers sharing its ``default`` store
        (or, when that one cannot elect, the first store by alias that can); leader-only
        tasks run on the leader only. See :doc:`leadership </leadership>`."""
        alias = self._leadership.primary()
        return alias is not None and self._leadership.leads(alias)

    @property
    def leader_generation(self) -> int | None:
        """The generation of the term this scheduler holds on the store
        :attr:`is_leader` reports (the fencing token: a new number for every new term,
        whoever holds it), or ``None`` while it does not lead."""
        alias = self._leadership.primary()
        return None if alias is None else self._leadership.generation(alias)

    def is_leader_of(self, store: str) -> bool:
        """True while this scheduler leads the schedulers sharing ``store``."""
        return self._leadership.leads(store)

    def get_leader(self, store: str | None = None) -> LeaderTerm | None:
        """The fleet's leader as ``store`` records it (by default the store
        :attr:`is_leader` reports on): its identity, term generation and the seconds
        left of its lease, or ``None`` when no term runs or no store elects. Read from
        the store, so it names another member's term too (what :attr:`is_leader` cannot);
        for operators, not for deciding anything: it may be stale when read."""
        stores = self._plugins.stores
        if store is None:
            electing = sorted(alias for alias, s in stores.items() if s.supports_election)
            store = "default" if "default" in electing else next(iter(electing), None)
            if store is None:
                return None
        if store not in stores:
            raise UnknownAliasError("store", store, list(stores))
        return stores[store].get_leader()

    def _elected(self, alias: str) -> None:
        """This scheduler became ``alias``'s leader: look at the store now (its due
        leader-only tasks are this scheduler's to run)."""
        gate = self._plugins.gates.get(alias)
        if gate is not None:
            gate.dirty = True
        if self.state == SchedulerState.RUNNING:
            self.wakeup()

    def _abort_start(self, unstored: list[PendingTask]) -> None:
        """Undo a start that failed while storing pending tasks (e.g. a persisted task
        with the same id): stop what was started and keep the tasks not yet stored, so
        fixing the cause and calling start() again loses nothing."""
        with self._lock:
            self.state = SchedulerState.STOPPED
            self._tasks.restore_pending(unstored)
        self._stop_plugins()

    def _stop_plugins(self) -> None:
        for executor in list(self._plugins.executors.values()):
            try:
                executor.shutdown(wait=False)
            except Exception:
                self.logger.exception("executor %r failed to shut down", executor.alias)
        self._plugins.close_stores()

    def _stop_processing(self) -> None:
        """First step of every shutdown: no pass starts and no run is dispatched after it."""
        with self._lock:
            if self.state == SchedulerState.STOPPED:
                raise SchedulerNotRunningError()
            self.state = SchedulerState.STOPPED
        self._pass.planned_wakeup = None

    def _shutdown_timeout(self, timeout: float | None) -> float | None:
        """The bound of this shutdown: the call's ``timeout``, else the scheduler's."""
        if timeout is None:
            return self.shutdown_timeout
        return _check_shutdown_timeout(timeout)

    def _wait_for_runs(self, timeout: float | None) -> bool:
        """Wait for the running tasks (at most ``timeout`` seconds); past it, cancel what
        can be cancelled and report the rest. True when every run finished."""
        if self._plugins.wait_executors_idle(timeout):
            return True
        self._cancel_at_timeout(timeout)
        return self._plugins.wait_executors_idle(CANCEL_GRACE) or self._report_left_running()

    async def _wait_for_runs_async(self, timeout: float | None) -> bool:
        """:meth:`_wait_for_runs` without blocking the loop."""
        if await self._plugins.wait_executors_idle_async(timeout):
            return True
        self._cancel_at_timeout(timeout)
        idle = await self._plugins.wait_executors_idle_async(CANCEL_GRACE)
        return idle or self._report_left_running()

    def _cancel_at_timeout(self, timeout: float | None) -> None:
        reason = f"cancelled: shutdown timeout of {timeout} s passed"
        self.logger.warning(
            "shutdown: runs still active after %s s (%s); cancelling the coroutines",
            timeout,
            self._plugins.active_task_ids(),
        )
        self._plugins.cancel_active(reason)

    def _report_left_running(self) -> bool:
        """Log the runs a timed-out shutdown leaves running (threads and processes cannot
        be stopped); returns False, for the callers' ``or``."""
        self.logger.warning(
            "shutdown goes on without waiting for runs that cannot be cancelled (threads, "
            "processes): %s",
            self._plugins.active_task_ids(),
        )
        return False

    def _wait_for_pass(self) -> None:
        """Wait for batches still running on the stores' threads: the runs they planned
        are handed to executors (which still accept them) and written back, so shutdown
        never errors, deletes or loses a run it raced."""
        self._pass.wait_idle()

    def _called_from_own_run(self) -> bool:
        """True when the caller is one of this scheduler's runs: a shutdown with ``wait``
        must then not wait for the runs to finish in the caller, or it waits for itself."""
        return self._plugins.runs_caller()

    def _run_shutdown_tasks(self) -> None:
        """Send the shutdown-trigger tasks to their executors. Variants call it after the
        active runs finished (with ``wait``), so a lifecycle's cleanup never overlaps a
        tick that is still running."""
        now = self.clock.now()
        for task in self._tasks.shutdown_tasks_to_run():
            self._dispatcher.submit(task, [now])

    def _stop_executors(self, wait: bool) -> list[Exception]:
        """Shut every executor down; returns the failures (see Plugins.stop_executors)."""
        return self._plugins.stop_executors(wait)

    async def _stop_executors_async(self, wait: bool) -> list[Exception]:
        """:meth:`_stop_executors` for schedulers on an event loop."""
        return await self._plugins.stop_executors_async(wait)

    def _finish_shutdown(self) -> None:
        """Shut the stores down (they keep their tasks), release store locks, and report
        the shutdown."""
        # Terms are resigned first: another scheduler takes over at its next attempt.
        self._leadership.stop()
        # Runs that ended must be recorded in shared stores before those close.
        self._spacer.close()
        self._runs.close()
        if self._history is not None:
            self._history.close()
        self._plugins.close_stores()
        self.logger.info("scheduler shut down")
        self._events.emit(SchedulerEvent(SCHEDULER_SHUTDOWN))

    def pause(self) -> None:
        """Stop running tasks until :meth:`resume`; tasks can still be added and changed."""
        if self.state == SchedulerState.STOPPED:
            raise SchedulerNotRunningError()
        if self.state == SchedulerState.RUNNING:
            self.state = SchedulerState.PAUSED
            self._events.emit(SchedulerEvent(SCHEDULER_PAUSED))

    def resume(self) -> None:
        """Resume a paused scheduler; what came due meanwhile follows the misfire rules."""
        if self.state == SchedulerState.STOPPED:
            raise SchedulerNotRunningError()
        if self.state == SchedulerState.PAUSED:
            self.state = SchedulerState.RUNNING
            self._events.emit(SchedulerEvent(SCHEDULER_RESUMED))
            self.wakeup()

    # -- what the variants provide -----------------------------------------------------------

    @abstractmethod
    def wakeup(self) -> None:
        """Make the driver run a pass now instead of at its planned time. Thread-safe."""

    @abstractmethod
    def _create_default_executor(self) -> BaseExecutor:
        """The executor a ``default`` alias gets when none was configured."""

    @abstractmethod
    async def shutdown_async(self, wait: bool = True, timeout: float | None = None) -> None:
        """Shut down without blocking the calling event loop (ASGI, ``async with``);
        ``timeout`` as for ``shutdown`` (default: the scheduler's ``shutdown_timeout``)."""

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

    def _run_pass(self) -> float | None:
        """One processing pass on the calling thread; returns the seconds to sleep."""
        if self.state != SchedulerState.RUNNING:
            return None
        return self._pass.run_pass(self.clock.now())

    def _wakeup_from_clock(self) -> None:
        if self.state == SchedulerState.RUNNING:
            self.wakeup()

    def _wakeup_for(self, next_run_time: datetime | None) -> None:
        """Wake the driver if a task now runs earlier than the driver plans to wake."""
        if next_run_time is None or self.state != SchedulerState.RUNNING:
            return
        planned = self._pass.planned_wakeup
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
        instance = build_plugin(store_registry, BaseStore, store, options)
        with self._lock:
            gate = self._plugins.add_store(instance, alias)
            if self.running:
                instance.start(alias)
                gate.open(self.lock_path)
                self._leadership.refresh()
        self._events.emit(SchedulerEvent(STORE_ADDED, alias))
        if self.running:
            self._wakeup_for(instance.get_next_run_time())

    def remove_store(self, alias: str, shutdown: bool = True) -> None:
        """Remove a store (its tasks stay in it); shut it down unless told not to."""
        with self._lock:
            gate = self._plugins.remove_store(alias)
        gate.wait_idle()
        self._leadership.refresh()
        gate.close()
        if shutdown and self.running:
            gate.store.shutdown()
        self._events.emit(SchedulerEvent(STORE_REMOVED, alias))

    def add_executor(
        self,
        executor: BaseExecutor | str | Mapping[str, Any],
        alias: str = "default",
        **options: Any,
    ) -> None:
        """Add an executor under ``alias`` (instance, alias string or dict, as for stores)."""
        instance = build_plugin(executor_registry, BaseExecutor, executor, options)
        with self._lock:
            self._plugins.add_executor(instance, alias)
            if self.running:
                instance.start(self._executor_host(), alias)
        self._events.emit(SchedulerEvent(EXECUTOR_ADDED, alias))

    def remove_executor(self, alias: str, shutdown: bool = True) -> None:
        """Remove an executor; shut it down (waiting for its runs) unless told not to."""
        with self._lock:
            executor = self._plugins.remove_executor(alias)
        if shutdown and self.running:
            executor.shutdown()
        self._events.emit(SchedulerEvent(EXECUTOR_REMOVED, alias))

    def add_listener(self, callback: Listener, mask: int = ALL_EVENTS) -> None:
        """Call ``callback(event)`` for every event whose code is in ``mask``."""
        self._events.add(callback, mask)

    def remove_listener(self, callback: Listener) -> None:
        """Stop calling ``callback`` (every registration of it)."""
        self._events.remove(callback)

    def set_run_hook(self, hook: RunHook | None) -> None:
        """Wrap every instance of every task on its way to its executor with ``hook``
        (``None``: none). For instrumentation such as :func:`tickwork.tracing.instrument`;
        one hook at a time."""
        self._dispatcher.run_hook = hook

    # -- run history ---------------------------------------------------------------------

    def get_runs(
        self,
        task_id: str | None = None,
        *,
        store: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        """Records of runs, newest first (by scheduled time): every run of every
        scheduler sharing the stores, with the identity that ran it. Filters: a task, a
        store, an outcome (``"running"``, ``"success"``, ``"error"``, ``"timeout"``,
        ``"cancelled"``, ``"missed"``, ``"max_instances"``) and scheduled times at or after
        ``since``. Empty with ``run_history=None``. Reads the stores: from a coroutine,
        use :meth:`get_runs_async`."""
        if outcome is not None and outcome not in OUTCOMES:
            raise ConfigurationError(f"unknown outcome {outcome!r}; known: {list(OUTCOMES)}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(f"limit must be an integer >= 1, got {limit!r}")
        if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
            raise ConfigurationError(f"since must be a timezone-aware datetime, got {since!r}")
        if self._history is None:
            return []
        aliases = [store] if store is not None else list(self._plugins.stores)
        if store is not None:
            self._plugins.store(store)  # an unknown alias fails by name
        return self._history.query(aliases, task_id, outcome, since, limit)

    async def get_runs_async(
        self,
        task_id: str | None = None,
        *,
        store: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        """:meth:`get_runs` off the event loop."""

        def query() -> list[RunRecord]:
            return self.get_runs(task_id, store=store, outcome=outcome, since=since, limit=limit)

        return await asyncio.to_thread(query)

    # -- security ------------------------------------------------------------------------

    def resign_tasks(self, store: str | None = None) -> int:
        """Rewrite every task of ``store`` (default: all stores) signed and encrypted
        with the current ``signing_key`` / ``encryption_key``, so old keys can be
        dropped; return how many. Records that do not verify stay set aside. Does
        store I/O: from a coroutine, use :meth:`resign_tasks_async`."""
        if store is not None:
            return self._security.resign({store: self._plugins.store(store)})
        return self._security.resign(dict(self._plugins.stores))

    async def resign_tasks_async(self, store: str | None = None) -> int:
        """:meth:`resign_tasks` off the event loop."""
        return await asyncio.to_thread(self.resign_tasks, store)

    # -- cancelling runs -----------------------------------------------------------------

    def cancel_run(self, run_id: str) -> bool:
        """Cancel the run ``run_id`` names (``RunRecord.run_id``, ``event.run_id``)
        wherever it runs: here at once, on another scheduler of a shared store within
        its lease-renewal interval; a pending retry of it is dropped. Its outcome is
        ``TASK_CANCELLED``. Returns False when no such run was found, or it cannot be
        stopped (a thread: logged). Does store I/O: from a coroutine, use
        :meth:`cancel_run_async`."""
        task_id, run_time, _ = parse_run_id(run_id)
        return self._canceller.cancel(task_id, run_time, f"cancel_run({run_id!r})") > 0

    def cancel_task_runs(self, task_id: str) -> int:
        """Cancel every run of ``task_id`` in progress, wherever it runs, and drop its
        pending retries (see :meth:`cancel_run`); return how many."""
        return self._canceller.cancel(task_id, None, f"cancel_task_runs({task_id!r})")

    async def cancel_run_async(self, run_id: str) -> bool:
        """:meth:`cancel_run` off the event loop."""
        return await asyncio.to_thread(self.cancel_run, run_id)

    async def cancel_task_runs_async(self, task_id: str) -> int:
        """:meth:`cancel_task_runs` off the event loop."""
        return await asyncio.to_thread(self.cancel_task_runs, task_id)

    def _retry_written(self, alias: str, due: datetime) -> None:
        """A pending retry was written to store ``alias``: process the store when it is
        due (a store only this scheduler processes sleeps until its next task)."""
        gate = self._plugins.gates.get(alias)
        if gate is not None:
            gate.dirty = True
        self._wakeup_for(due)

    def admin_app(self, **options: Any) -> Any:
        """The admin app (JSON API and dashboard) for this scheduler: an ASGI app to
        mount in FastAPI or Starlette. Options as for :func:`tickwork.web.admin_app`
        (``token=``, ``read_only_token=``, ``auth=``, ``read_only=`` …). Needs the
        ``tickwork[web]`` extra."""
        from tickwork.web import admin_app

        return admin_app(self, **options)

    def get_scheduler_info(self) -> dict[str, Any]:
        """A plain-dict summary of the scheduler."""
        return {
            "type": type(self).__name__,
            "identity": self.identity,
            "state": self.state.name.lower(),
            "timezone": str(self.timezone),
            "stores": {alias: type(s).__name__ for alias, s in self._plugins.stores.items()},
            "executors": {alias: type(e).__name__ for alias, e in self._plugins.executors.items()},
            "task_defaults": dict(self.task_defaults),
            "pending_tasks": self._tasks.pending_count(),
            "leadership": self._leadership_info(),
        }

    def _leadership_info(self) -> dict[str, Any]:
        """The ``leadership`` part of :meth:`get_scheduler_info`: the store that elects
        (``None``: none can), whether this scheduler leads it, its term's generation,
        and the leader's identity when known (this scheduler's own while it leads;
        another member's term is not read from the store for this)."""
        alias = self._leadership.primary()
        generation = self.leader_generation
        return {
            "store": alias,
            "is_leader": generation is not None,
            "generation": generation,
            "leader": self.identity if generation is not None else None,
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.identity} {self.state.name.lower()}>"


#: After cancelling at a shutdown timeout, how long to wait for the cancelled runs to end.
CANCEL_GRACE = 1.0


def _check_shutdown_timeout(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ConfigurationError(
            f"a shutdown timeout must be a number of seconds > 0, or None (no limit), got {value!r}"
        )
    return float(value)


class _Host:
    """An :class:`~tickwork.executors.base.ExecutorHost`: the event hub's ``wants``, the
    retrier's ``emit`` (which passes the events on to the hub), and the scheduler's kind
    for error messages."""

    def __init__(self, events: EventHub, retrier: Retrier, scheduler_name: str) -> None:
        self.wants = events.wants
        self.emit = retrier.emit
        self.scheduler_name = scheduler_name


def _is_running(life: Lifecycle) -> bool:
    """True while the scheduler runs (started and not paused)."""
    return life.state is SchedulerState.RUNNING
