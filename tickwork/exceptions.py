"""Every error tickwork raises on purpose.

The hierarchy, with the builtin each class also derives from so that ordinary
``except ValueError`` / ``except LookupError`` code keeps working::

    TickworkError
    ├── ConfigurationError (ValueError)
    │   ├── UnknownAliasError          unknown trigger / store / executor alias
    │   ├── InvalidTriggerError        bad trigger arguments (negative interval, minute=60 ...)
    │   ├── InvalidTaskError           max_instances < 1, args not matching fn, changing id ...
    │   ├── LockPathError              lock_path template or directory unusable
    │   ├── RouterError                a router included twice, two tasks with one id ...
    │   ├── NoElectionError            leader_only=True for a store that cannot elect a leader
    │   └── MissingDependencyError (ImportError)   a store's driver is not installed
    ├── ReferenceResolutionError (ImportError)   "module:function" that cannot be imported
    ├── SerializationError (ValueError)          a task a persistent store cannot keep
    ├── TaskLookupError (LookupError)             no task with that id
    ├── ConflictIdError (KeyError)                duplicate task id
    ├── MaxInstancesReachedError                  an extra run refused by an executor
    ├── SchedulerAlreadyRunningError (RuntimeError)
    ├── SchedulerNotRunningError (RuntimeError)
    ├── StoreUnavailableError (ConnectionError)   a store's backend cannot be reached
    ├── RunTimeoutError (TimeoutError)            a run went past its task's timeout
    └── RunCancelledError                         a run cancelled by cancel_run & co.

Every message names the offending value, so the log line alone says what to fix.
"""

from __future__ import annotations

import difflib
from typing import Any

__all__ = [
    "CeleryTaskNotRegisteredError",
    "ConfigurationError",
    "ConflictIdError",
    "InvalidTaskError",
    "InvalidTriggerError",
    "LockPathError",
    "MaxInstancesReachedError",
    "MissingDependencyError",
    "NoElectionError",
    "ReferenceResolutionError",
    "RouterError",
    "RunCancelledError",
    "RunTimeoutError",
    "SchedulerAlreadyRunningError",
    "SchedulerNotRunningError",
    "SerializationError",
    "StoreUnavailableError",
    "TaskLookupError",
    "TickworkError",
    "UnknownAliasError",
]


class TickworkError(Exception):
    """The root of every exception tickwork raises on purpose."""


class ConfigurationError(TickworkError, ValueError):
    """A value given to tickwork cannot be used."""


class UnknownAliasError(ConfigurationError):
    """A trigger, store or executor alias that is not registered."""

    def __init__(self, kind: str, alias: object, known: list[str] | tuple[str, ...]) -> None:
        self.kind = kind
        self.alias = alias
        self.known = sorted(known)
        super().__init__(f"unknown {kind} alias {alias!r}; known aliases: {', '.join(self.known)}")


class InvalidTriggerError(ConfigurationError):
    """Trigger arguments that cannot describe a schedule."""


class InvalidTaskError(ConfigurationError):
    """Task arguments that cannot make a runnable task."""


class LockPathError(ConfigurationError):
    """A ``lock_path`` template that cannot be formatted, or whose directory is unusable."""


class RouterError(ConfigurationError):
    """A :class:`~tickwork.routers.TaskRouter` used in a way that would lose or repeat
    tasks: included twice (or in itself), two tasks with one id, a task declared after
    a scheduler included the router."""


class NoElectionError(ConfigurationError):
    """``leader_only=True`` for a task whose store cannot elect a leader: a memory or
    file store without ``lock_path`` belongs to one process, so there is no fleet to
    lead. The message names the task, the store and what to use instead."""

    def __init__(self, task_id: str, store: str, store_type: str) -> None:
        self.task_id = task_id
        self.store = store
        self.store_type = store_type
        super().__init__(
            f"leader_only=True for task {task_id!r}: its store {store!r} ({store_type}) "
            "cannot elect a leader (it is this process's own, with no fleet to lead); put "
            "the task in a store the schedulers share (SQLAlchemyStore, RedisStore), or "
            "give the schedulers a lock_path so that they elect one through its lock"
        )

    def __reduce__(self) -> tuple[type[NoElectionError], tuple[str, str, str]]:
        return type(self), (self.task_id, self.store, self.store_type)


class MissingDependencyError(ConfigurationError, ImportError):
    """A backend needs a library that is not installed (a database driver, the Redis
    client). ``module`` (also ``name``, as on every ``ImportError``) is the missing
    module, ``install`` what to install; an ``ImportError``, so ``except ImportError``
    around an optional backend keeps working."""

    def __init__(self, module: str, needed_by: str, install: str) -> None:
        self.module = module
        self.needed_by = needed_by
        self.install = install
        super().__init__(
            f"{needed_by} needs the module {module!r}, which is not installed: {install}"
        )
        self.name = module

    def __reduce__(self) -> tuple[type[MissingDependencyError], tuple[str, str, str]]:
        return type(self), (self.module, self.needed_by, self.install)


class ReferenceResolutionError(TickworkError, ImportError):
    """A ``"module:qualname"`` reference that does not resolve to an object."""

    def __init__(self, ref: str, reason: str) -> None:
        self.ref = ref
        super().__init__(f"cannot resolve reference {ref!r}: {reason}")


class SerializationError(TickworkError, ValueError):
    """A task (or one of its values) that the store's serializer cannot keep."""


class TaskLookupError(TickworkError, LookupError):
    """No task with the given id exists (in the given store)."""

    def __init__(self, task_id: str, store: str | None = None) -> None:
        self.task_id = task_id
        where = f" in store {store!r}" if store else ""
        super().__init__(f"no task with id {task_id!r}{where}")


class ConflictIdError(TickworkError, KeyError):
    """A task with the same id already exists and ``replace_existing`` was not set."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(
            f"a task with id {task_id!r} already exists; pass replace_existing=True to replace it"
        )

    def __str__(self) -> str:
        # KeyError.__str__ would wrap the message in quotes.
        return str(self.args[0])


class MaxInstancesReachedError(TickworkError):
    """An executor refused a run because ``max_instances`` runs of the task are active."""

    def __init__(self, task_id: str, max_instances: int) -> None:
        self.task_id = task_id
        self.max_instances = max_instances
        super().__init__(
            f"task {task_id!r} already has {max_instances} running instance(s) (max_instances)"
        )


class SchedulerAlreadyRunningError(TickworkError, RuntimeError):
    """``start()`` was called on a scheduler that is already running."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*(args or ("the scheduler is already running",)))


class SchedulerNotRunningError(TickworkError, RuntimeError):
    """An operation that needs a running scheduler was called on a stopped one."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*(args or ("the scheduler is not running",)))


class StoreUnavailableError(TickworkError, ConnectionError):
    """A store's backend (database, Redis, directory) cannot be reached right now."""

    #: Set on errors made by :meth:`timed_out`: the store's alias, the operation that
    #: gave up, and the bound (seconds) it gave up after; ``None`` otherwise.
    alias: str | None = None
    operation: str | None = None
    io_timeout: float | None = None

    @classmethod
    def timed_out(
        cls, kind: str, alias: str | None, operation: str, io_timeout: float, reason: object
    ) -> StoreUnavailableError:
        """The error for a store call that gave up after its I/O bound (``io_timeout``
        seconds): a lock held elsewhere, a server that does not answer. ``kind`` names
        the store type (``"SQL"``, ``"Redis"``), ``reason`` is the driver's message."""
        error = cls(
            f"{kind} store {alias!r} could not {operation} within its io_timeout of "
            f"{io_timeout:g} s: {reason}"
        )
        error.alias = alias
        error.operation = operation
        error.io_timeout = io_timeout
        return error


class RunTimeoutError(TickworkError, TimeoutError):
    """The ``exception`` of a ``TASK_TIMEOUT`` event: the run went past its task's
    ``timeout``."""

    def __init__(self, task_id: str, timeout: float) -> None:
        self.task_id = task_id
        self.timeout = timeout
        super().__init__(f"run of task {task_id!r} went past its timeout of {timeout:g} s")


class RunCancelledError(TickworkError):
    """The ``exception`` of a ``TASK_CANCELLED`` event: the run was cancelled (by
    ``cancel_run`` / ``cancel_task_runs``, here or on another scheduler of the fleet);
    the message says why."""


# -- Celery and arq executors (helper "celery") ---------------------------------------------


class CeleryTaskNotRegisteredError(TickworkError, LookupError):
    """The ``exception`` of a ``TASK_ERROR`` event: a run was for a Celery task name the
    executor's Celery app does not know; nothing was sent, the task is kept."""

    def __init__(self, name: str, app: str, known: list[str]) -> None:
        self.celery_name = name
        self.app = app
        self.known = known
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        super().__init__(
            f"Celery task {name!r} is not registered in the Celery app {app!r}{hint}; "
            "import the module defining it in the scheduler's app (include=...)"
        )

    def __reduce__(self) -> tuple[type[CeleryTaskNotRegisteredError], tuple[str, str, list[str]]]:
        return type(self), (self.celery_name, self.app, self.known)
