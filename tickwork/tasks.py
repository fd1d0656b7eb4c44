"""The :class:`Task`: what to run, with which arguments, on which trigger, under which rules."""

from __future__ import annotations

import functools
import inspect
import os
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

# A random (version 4) UUID in hex, as uuid4().hex gives, without building a UUID object
# (1.5 µs instead of 3.3 µs per task): clear the version and variant bits, then set them.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def _new_id() -> str:
    return f"{int.from_bytes(os.urandom(16)) & _UUID4_CLEAR | _UUID4_SET:032x}"


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
        if fn is None:
            raise InvalidTaskError("a task needs a callable (fn) or a 'module:function' reference")
        if id is not None and not isinstance(id, str):
            raise InvalidTaskError(f"a task id must be a string, got {id!r}")
        self.id = id or _new_id()
        self._scheduler: weakref.ref[BaseScheduler] | None = None
        self._fn_ref: str | None = None
        self.store_alias = store_alias
        self.executor = executor or "default"
        self.next_run_time = next_run_time
        self.coalesce = coalesce
        self.max_instances = max_instances
        self.mistrigger_grace_time = mistrigger_grace_time  # type: ignore[assignment]
        self.trigger = UNSET
        if trigger is None and not trigger_args:
            trigger_obj: Any = UNSET
        else:
            trigger_obj = trigger if trigger is not None else "date"
            if trigger_args:
                from tickwork.triggers import create_trigger

                if not isinstance(trigger_obj, str):
                    raise InvalidTaskError(
                        f"trigger keywords {sorted(trigger_args)} go with a trigger alias, "
                        f"not with the instance {trigger_obj!r}"
                    )
                trigger_obj = create_trigger(trigger_obj, **trigger_args)
        changes: dict[str, Any] = {
            "fn": fn,
            "args": args,
            "kwargs": kwargs,
            "name": name,
            "coalesce": coalesce,
            "max_instances": max_instances,
            "mistrigger_grace_time": mistrigger_grace_time,
            "next_run_time": next_run_time,
        }
        if trigger_obj is not UNSET:
            changes["trigger"] = trigger_obj
        self._apply(changes, creating=True)
        if scheduler is not None:
            scheduler.add_task(self)

    # -- validation: every change, at creation or later, goes through here ---------------

    def _apply(self, changes: Mapping[str, Any], creating: bool = False) -> None:
        """Validate ``changes`` and apply them all, or none (on error nothing changes)."""
        if "id" in changes and not creating:
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
            fn = getattr(self, "fn", None)
        if "args" in changes:
            args = changes["args"]
            values["args"] = tuple(args) if args else _EMPTY_ARGS
            if isinstance(args, str | bytes):
                raise InvalidTaskError(f"args must be a list or tuple, got the string {args!r}")
        if "kwargs" in changes:
            kwargs = changes["kwargs"]
            if kwargs is not None and not isinstance(kwargs, Mapping):
                raise InvalidTaskError(f"kwargs must be a mapping, got {kwargs!r}")
            values["kwargs"] = dict(kwargs) if kwargs else {}
        if "name" in changes or creating:
            name = changes.get("name")
            if name is None and creating:
                name = (
                    getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
                )
            if name is not None:
                values["name"] = str(name)
        if "trigger" in changes:
            trigger = changes["trigger"]
            if not isinstance(trigger, BaseTrigger):
                raise InvalidTaskError(f"trigger must be a BaseTrigger instance, got {trigger!r}")
            values["trigger"] = trigger
        if "executor" in changes:
            if not isinstance(changes["executor"], str):
                raise InvalidTaskError(
                    f"executor must be an alias string, got {changes['executor']!r}"
                )
            values["executor"] = changes["executor"]
        if changes.get("coalesce", UNSET) is not UNSET:
            values["coalesce"] = bool(changes["coalesce"])
        if changes.get("max_instances", UNSET) is not UNSET:
            max_instances = changes["max_instances"]
            if (
                isinstance(max_instances, bool)
                or not isinstance(max_instances, int)
                or max_instances < 1
            ):
                raise InvalidTaskError(
                    f"max_instances must be an integer >= 1, got {max_instances!r}"
                )
            values["max_instances"] = max_instances
        if changes.get("mistrigger_grace_time", UNSET) is not UNSET:
            values["mistrigger_grace_time"] = _grace_seconds(changes["mistrigger_grace_time"])
        if changes.get("next_run_time", UNSET) is not UNSET:
            next_run_time = changes["next_run_time"]
            if next_run_time is not None and (
                not isinstance(next_run_time, datetime) or next_run_time.tzinfo is None
            ):
                raise InvalidTaskError(
                    f"next_run_time must be a timezone-aware datetime or None, got {next_run_time!r}"
                )
            values["next_run_time"] = next_run_time
        if "fn" in changes or "args" in changes or "kwargs" in changes:
            check_callable_args(
                values.get("fn", fn),
                values.get("args", getattr(self, "args", _EMPTY_ARGS)),
                values.get("kwargs", getattr(self, "kwargs", {})),
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
            "kwargs": self.kwargs,
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
        self.store_alias = None
        self.id = state["id"]
        self.name = state["name"]
        self._fn_ref = state["fn"]
        self.fn = ref_to_obj(state["fn"])
        self.args = tuple(state["args"]) if state["args"] else _EMPTY_ARGS
        self.kwargs = dict(state["kwargs"])
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
