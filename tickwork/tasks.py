"""The :class:`Task`: what to run, with which arguments, on which trigger, under which rules."""

from __future__ import annotations

import functools
import inspect
import os
import random
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Final

from tickwork.exceptions import InvalidTaskError, ReferenceResolutionError
from tickwork.triggers.base import BaseTrigger
from tickwork.utils import check_callable_args, obj_to_ref, ref_to_obj

if TYPE_CHECKING:
    from tickwork.schedulers.base import BaseScheduler

__all__ = ["UNSET", "Task"]


class _Unset:
    """The marker for "not given": the scheduler's ``task_defaults`` fill it in."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final[Any] = _Unset()

_EMPTY_ARGS: tuple[Any, ...] = ()


class _NoKwargs(dict[str, Any]):
    """The ``kwargs`` of every task without keyword arguments: one shared empty dict that
    refuses changes, rather than a new empty dict per task (64 bytes each in a store of
    millions). Pickles as a reference to the shared instance."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a task's kwargs are changed with task.update(kwargs=...), not in place")

    __setitem__ = __delitem__ = __ior__ = setdefault = update = _refuse
    pop = popitem = clear = _refuse

    def __reduce__(self) -> str:
        return "_EMPTY_KWARGS"

    def __repr__(self) -> str:
        return "{}"


_EMPTY_KWARGS: dict[str, Any] = _NoKwargs()

# A random (version 4) UUID in hex, as uuid4().hex gives, without building a UUID object
# or asking the kernel for entropy on every task (0.4 µs instead of 3.3 µs): 122 random
# bits from a generator seeded from os.urandom, reseeded in forked children so two
# gunicorn workers never hand out the same ids. Ids need uniqueness, not secrecy.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
_id_bits = random.Random()
if hasattr(os, "register_at_fork"):  # (POSIX only; Windows has no fork)
    os.register_at_fork(after_in_child=_id_bits.seed)


def _new_id() -> str:
    return f"{_id_bits.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"


#: Classes already seen to be triggers: ``isinstance`` against the abstract BaseTrigger
#: is a Python-level call, and Task() asks on every add_task.
_TRIGGER_TYPES: set[type] = set()

#: The fields ``Task.update`` / ``scheduler.update_task`` may change.
MODIFIABLE_FIELDS = frozenset(
    {
        "fn",
        "args",
        "kwargs",
        "name",
        "trigger",
        "executor",
        "coalesce",
        "max_instances",
        "mistrigger_grace_time",
        "next_run_time",
    }
)


class Task:
    """A unit of scheduled work.

    Attributes (all readable; change them through :meth:`update`, never by assignment,
    so the store and a running scheduler see the change):

    * ``id`` (str, immutable) and ``name`` (defaults to the callable's qualified name);
    * ``fn``: the callable, given as a callable or a ``"package.module:qualname"`` string;
    * ``args`` (tuple) / ``kwargs`` (dict) it is called with, checked against its signature;
    * ``trigger``: a :class:`~tickwork.triggers.base.BaseTrigger`;
    * ``executor``: the alias of the executor that runs it; ``store_alias``: its store;
    * ``coalesce``: when several runs are due at once, run once instead of once each;
    * ``max_instances``: how many runs of this task may be active at the same time;
    * ``mistrigger_grace_time``: seconds a run may be late and still run (``None``: always);
    * ``next_run_time``: when it runs next; ``None`` means paused.

    A task built with ``scheduler=`` is added to that scheduler at once; one built without
    is passed to ``scheduler.add_task(task)`` later.
    """

    __slots__ = (
        "__weakref__",
        "_fn_ref",
        "_scheduler",
        "_store_entry",
        "args",
        "coalesce",
        "executor",
        "fn",
        "id",
        "kwargs",
        "max_instances",
        "mistrigger_grace_time",
        "name",
        "next_run_time",
        "store_alias",
        "trigger",
    )

    fn: Callable[..., Any]
    trigger: BaseTrigger
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    name: str
    executor: str
    coalesce: bool
    max_instances: int
    mistrigger_grace_time: float | None

    def __init__(
        self,
        fn: Callable[..., Any] | str | None = None,
        trigger: BaseTrigger | None = None,
        args: Iterable[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        id: str | None = None,
        name: str | None = None,
        executor: str | None = None,
        store_alias: str | None = None,
        coalesce: bool = UNSET,
        max_instances: int = UNSET,
        mistrigger_grace_time: float | timedelta | None = UNSET,
        next_run_time: datetime | None = UNSET,
        scheduler: BaseScheduler | None = None,
        **trigger_args: Any,
    ) -> None:
        # The same checks as _apply, written out flat: this runs on every add_task, and
        # a new task has no old values to keep when a check fails.
        if fn is None:
            raise InvalidTaskError("a task needs a callable (fn) or a 'module:function' reference")
        if id is not None and not isinstance(id, str):
            raise InvalidTaskError(f"a task id must be a string, got {id!r}")
        if isinstance(fn, str) or not callable(fn):
            fn, self._fn_ref = self._resolve_fn(fn)
        else:
            self._fn_ref = None
        self.fn = fn
        self.args = args = _EMPTY_ARGS if args is None else _task_args(args)
        self.kwargs = kwargs = _EMPTY_KWARGS if kwargs is None else _task_kwargs(kwargs)
        check_callable_args(fn, args, kwargs)
        if trigger_args or isinstance(trigger, str):
            from tickwork.triggers import create_trigger

            alias = "date" if trigger is None else trigger
            if not isinstance(alias, str):
                raise InvalidTaskError(
                    f"trigger keywords {sorted(trigger_args)} go with a trigger alias, "
                    f"not with the instance {alias!r}"
                )
            trigger = create_trigger(alias, **trigger_args)
        if trigger is None:
            self.trigger = UNSET
        elif type(trigger) in _TRIGGER_TYPES or isinstance(trigger, BaseTrigger):
            _TRIGGER_TYPES.add(type(trigger))
            self.trigger = trigger
        else:
            raise InvalidTaskError(f"trigger must be a BaseTrigger instance, got {trigger!r}")
        self.id = id or _new_id()
        self.name = _default_name(fn) if name is None else str(name)
        self.executor = "default" if executor is None else _task_executor(executor)
        self.store_alias = store_alias
        self.coalesce = coalesce if coalesce is UNSET else bool(coalesce)
        self.max_instances = (
            max_instances if max_instances is UNSET else _task_max_instances(max_instances)
        )
        self.mistrigger_grace_time = (
            mistrigger_grace_time
            if mistrigger_grace_time is UNSET
            else _grace_seconds(mistrigger_grace_time)
        )
        self.next_run_time = (
            next_run_time if next_run_time is UNSET else _task_next_run_time(next_run_time)
        )
        self._scheduler: weakref.ref[BaseScheduler] | None = None
        self._store_entry: Any = None
        if scheduler is not None:
            scheduler.add_task(self)

    # -- validation: every later change goes through here ---------------------------------

    def _apply(self, changes: Mapping[str, Any]) -> None:
        """Validate ``changes`` and apply them all, or none (on error nothing changes)."""
        if "id" in changes:
            raise InvalidTaskError(
                f"a task's id cannot be changed (task {self.id!r}, new id {changes['id']!r}); "
                "add a new task and delete this one instead"
            )
        if not MODIFIABLE_FIELDS.issuperset(changes):
            unknown = set(changes) - MODIFIABLE_FIELDS
            raise InvalidTaskError(
                f"unknown task field(s) {sorted(unknown)}; known: {sorted(MODIFIABLE_FIELDS)}"
            )
        values: dict[str, Any] = {}
        fn = changes.get("fn", UNSET)
        if fn is not UNSET:
            fn, values["_fn_ref"] = self._resolve_fn(fn)
            values["fn"] = fn
        else:
            fn = self.fn
        if "args" in changes:
            values["args"] = _task_args(changes["args"])
        if "kwargs" in changes:
            values["kwargs"] = _task_kwargs(changes["kwargs"])
        if changes.get("name") is not None:
            values["name"] = str(changes["name"])
        if "trigger" in changes:
            trigger = changes["trigger"]
            if not isinstance(trigger, BaseTrigger):
                raise InvalidTaskError(f"trigger must be a BaseTrigger instance, got {trigger!r}")
            values["trigger"] = trigger
        if "executor" in changes:
            values["executor"] = _task_executor(changes["executor"])
        if changes.get("coalesce", UNSET) is not UNSET:
            values["coalesce"] = bool(changes["coalesce"])
        if changes.get("max_instances", UNSET) is not UNSET:
            values["max_instances"] = _task_max_instances(changes["max_instances"])
        if changes.get("mistrigger_grace_time", UNSET) is not UNSET:
            values["mistrigger_grace_time"] = _grace_seconds(changes["mistrigger_grace_time"])
        if changes.get("next_run_time", UNSET) is not UNSET:
            values["next_run_time"] = _task_next_run_time(changes["next_run_time"])
        if "fn" in changes or "args" in changes or "kwargs" in changes:
            check_callable_args(
                values.get("fn", fn),
                values.get("args", self.args),
                values.get("kwargs", self.kwargs),
            )
        for key, value in values.items():
            setattr(self, key, value)

    @staticmethod
    def _resolve_fn(fn: Any) -> tuple[Callable[..., Any], str | None]:
        if isinstance(fn, str):
            resolved = ref_to_obj(fn)
            if not callable(resolved):
                raise ReferenceResolutionError(fn, f"it names {resolved!r}, which is not callable")
            return resolved, fn
        if not callable(fn):
            raise InvalidTaskError(
                f"fn must be a callable or a 'module:function' string, got {fn!r}"
            )
        return fn, None

    # -- derived information ------------------------------------------------------------

    @property
    def fn_ref(self) -> str:
        """The ``"module:qualname"`` reference of ``fn``.

        Raises :class:`~tickwork.exceptions.ReferenceResolutionError` for callables that
        have none (lambdas, closures, bound methods of instances).
        """
        if self._fn_ref is None:
            self._fn_ref = obj_to_ref(self.fn)
        return self._fn_ref

    @property
    def paused(self) -> bool:
        """True when the task has no next run time."""
        return self.next_run_time is None

    @property
    def is_coroutine(self) -> bool:
        """True when ``fn`` is an ``async def`` function (checked through wrappers)."""
        return _is_coroutine_function(self.fn)

    def due_run_times(
        self, timezone: tzinfo, now: datetime, limit: int = 1000
    ) -> tuple[list[datetime], datetime | None]:
        """Return the fire times due at ``now`` (oldest first, at most ``limit``) and the
        fire time that follows the last of them (``None``: the trigger is finished).

        With ``coalesce`` only the last due time is run, but all are returned so the
        caller can report what it folded. ``limit`` keeps a tiny interval after a long
        outage from building a huge list; what is left comes due in the next pass.
        """
        run_times: list[datetime] = []
        next_time = self.next_run_time
        while next_time is not None and next_time <= now and len(run_times) < limit:
            run_times.append(next_time)
            next_time = self.trigger.get_next_trigger_time(timezone, next_time, now)
        return run_times, next_time

    def _shallow_copy(self) -> Task:
        """A new Task object sharing this one's field values (for stores and serializers
        that must not touch the original); it is held by no store."""
        clone = Task.__new__(Task)
        for slot in Task.__slots__:
            if slot != "__weakref__" and hasattr(self, slot):
                setattr(clone, slot, getattr(self, slot))
        clone._store_entry = None
        return clone

    # -- methods that act through the scheduler ------------------------------------------

    def _bound_scheduler(self) -> BaseScheduler:
        scheduler = self._scheduler() if self._scheduler is not None else None
        if scheduler is None:
            raise InvalidTaskError(
                f"task {self.id!r} is not attached to a scheduler; pass it to add_task() first"
            )
        return scheduler

    def update(self, **changes: Any) -> Task:
        """Change any field but ``id``; trigger keywords may be given with ``trigger=alias``."""
        if self._scheduler is None:
            self._apply(changes)
            return self
        self._bound_scheduler().update_task(self.id, self.store_alias, **changes)
        return self

    def reschedule(self, trigger: BaseTrigger | str, **trigger_args: Any) -> Task:
        """Give the task a new trigger and recompute its next run time."""
        self._bound_scheduler().reschedule_task(self.id, self.store_alias, trigger, **trigger_args)
        return self

    def pause(self) -> Task:
        """Stop the task from running until :meth:`resume`."""
        self._bound_scheduler().pause_task(self.id, self.store_alias)
        return self

    def resume(self) -> Task:
        """Give a paused task its next run time again (or delete it if it has none)."""
        self._bound_scheduler().resume_task(self.id, self.store_alias)
        return self

    def delete(self) -> None:
        """Remove the task from its store."""
        self._bound_scheduler().delete_task(self.id, self.store_alias)

    # -- state, for serializers ----------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """Return a versioned dict of the task's fields; ``fn`` as its reference string.

        Raises :class:`~tickwork.exceptions.ReferenceResolutionError` when ``fn`` has no
        importable reference (serializers turn that into a ``SerializationError``).
        """
        return {
            "version": 1,
            "id": self.id,
            "name": self.name,
            "fn": self.fn_ref,
            "args": self.args,
            "kwargs": self.kwargs if type(self.kwargs) is dict else dict(self.kwargs),
            "trigger": self.trigger,
            "executor": self.executor,
            "coalesce": self.coalesce,
            "max_instances": self.max_instances,
            "mistrigger_grace_time": self.mistrigger_grace_time,
            "next_run_time": self.next_run_time,
        }

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        version = state.get("version")
        if version != 1:
            raise InvalidTaskError(f"cannot read task state version {version!r}; upgrade tickwork")
        self._scheduler = None
        self._store_entry = None
        self.store_alias = None
        self.id = state["id"]
        self.name = state["name"]
        self._fn_ref = state["fn"]
        self.fn = ref_to_obj(state["fn"])
        self.args = tuple(state["args"]) if state["args"] else _EMPTY_ARGS
        self.kwargs = dict(state["kwargs"]) if state["kwargs"] else _EMPTY_KWARGS
        self.trigger = state["trigger"]
        self.executor = state["executor"]
        self.coalesce = state["coalesce"]
        self.max_instances = state["max_instances"]
        self.mistrigger_grace_time = state["mistrigger_grace_time"]
        self.next_run_time = state["next_run_time"]

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Task:
        """Build a task from a dict written by :meth:`__getstate__`."""
        task = cls.__new__(cls)
        task.__setstate__(state)
        return task

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Task):
            return self.id == other.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        next_run_time = getattr(self, "next_run_time", UNSET)
        if next_run_time is UNSET:
            when = "pending"
        elif next_run_time is None:
            when = "paused"
        else:
            when = next_run_time.isoformat()
        trigger = getattr(self, "trigger", UNSET)
        return f"<Task id={self.id!r} name={getattr(self, 'name', '?')!r} trigger={trigger!r} next={when}>"


def _task_args(args: Any) -> tuple[Any, ...]:
    if isinstance(args, str | bytes):
        raise InvalidTaskError(f"args must be a list or tuple, got the string {args!r}")
    return tuple(args) if args else _EMPTY_ARGS


def _task_kwargs(kwargs: Any) -> dict[str, Any]:
    if not kwargs:
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise InvalidTaskError(f"kwargs must be a mapping, got {kwargs!r}")
        return _EMPTY_KWARGS
    if not isinstance(kwargs, Mapping):
        raise InvalidTaskError(f"kwargs must be a mapping, got {kwargs!r}")
    return dict(kwargs)


def _default_name(fn: Any) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return str(name) if name else repr(fn)


def _task_executor(executor: Any) -> str:
    if not isinstance(executor, str):
        raise InvalidTaskError(f"executor must be an alias string, got {executor!r}")
    return executor


def _task_max_instances(value: Any) -> int:
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidTaskError(f"max_instances must be an integer >= 1, got {value!r}")
    if value < 1:
        raise InvalidTaskError(f"max_instances must be an integer >= 1, got {value!r}")
    return int(value)


def _task_next_run_time(value: Any) -> datetime | None:
    if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
        raise InvalidTaskError(
            f"next_run_time must be a timezone-aware datetime or None, got {value!r}"
        )
    return value


def _grace_seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidTaskError(
            f"mistrigger_grace_time must be seconds >= 0, a timedelta or None, got {value!r}"
        )
    return float(value)


def _is_coroutine_function(fn: Callable[..., Any]) -> bool:
    # Asked once per run; the inspect call is cached per function (bounded, so objects
    # used as callables don't pile up).
    try:
        return _coroutine_check(fn)
    except TypeError:  # unhashable callable
        return _unwrapped_is_coroutine(fn)


def _unwrapped_is_coroutine(fn: Callable[..., Any]) -> bool:
    while hasattr(fn, "func") and not inspect.iscoroutinefunction(fn):
        fn = fn.func
    return inspect.iscoroutinefunction(fn)


_coroutine_check = functools.lru_cache(maxsize=4096)(_unwrapped_is_coroutine)
