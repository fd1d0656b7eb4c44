"""Routers: declare tasks where they live, schedule them where the scheduler is.

A :class:`TaskRouter` collects task declarations with decorators, at import time and
without a scheduler (grelmicro's ``TaskRouter`` idea)::

    router = TaskRouter()

    @router.interval(minutes=5)
    async def refresh_cache() -> None: ...

and ``scheduler.include_router(router)`` adds them all, each with ``add_task``. A task's
id defaults to its function's ``module:qualname``, and it is added with
``replace_existing=True``, so a program that includes its routers at every start finds
its tasks again in a persistent store: replaced (their schedule going on where it was),
never duplicated, never a ``ConflictIdError``.

Routers nest (``router.include_router(other)``); options given to ``TaskRouter(...)`` are
defaults for every task of that router and of the routers included in it (the nearest
router's value wins, a task's own beats them all; ``tags``, once tasks have them, add
up).

Mistakes are refused where they are made, with :class:`~tickwork.exceptions.RouterError`:
a router included twice (in one scheduler, or in two routers), a router included in
itself, two tasks with one id, and a task declared on a router a scheduler has already
included (it would never be scheduled). Trigger and task options are checked when the
task is declared, so a misspelt keyword fails the import, not the start.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import sys
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Protocol, TypeVar, overload

from tickwork._spelling import ADD_TASK_SYNONYMS, unknown_names_message
from tickwork.exceptions import ConfigurationError, RouterError
from tickwork.tasks import Task
from tickwork.triggers import create_trigger
from tickwork.triggers.base import BaseTrigger

__all__ = ["TaskRouter"]

F = TypeVar("F", bound=Callable[..., Any])
_logger = logging.getLogger("tickwork.routers")

#: Options whose router defaults and task values add up instead of replacing each other
#: (``tags``: issue 17's task groups; inert until add_task takes them).
_MERGED = frozenset({"tags"})
#: ``add_task`` keywords that are not options a router can default.
_NOT_DEFAULTS = frozenset({"args", "kwargs", "id", "name", "next_run_time"})
#: Task() keywords that are not task fields (or not known to a task without a scheduler).
_NOT_TASK_FIELDS = frozenset({"fn", "trigger", "scheduler", "store", "replace_existing"})


class TaskAdder(Protocol):
    """What a router needs of a scheduler: its ``add_task``."""

    def add_task(self, fn_or_task: Any = None, trigger: Any = None, **kwargs: Any) -> Any: ...


@functools.cache
def _task_options() -> frozenset[str]:
    """The keywords of ``add_task`` that are the task's (the rest go to its trigger),
    read from its signature so an option added there is a router option too."""
    from tickwork.schedulers._task_api import TaskAPI  # (the schedulers import tasks)

    parameters = inspect.signature(TaskAPI.add_task).parameters.values()
    names = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    names -= {"self", "fn_or_task", "trigger"}
    return frozenset(names | ADD_TASK_SYNONYMS.keys() - {"fn", "func"})


@functools.cache
def _task_fields() -> frozenset[str]:
    """The keywords of ``Task()``: the options checked by building a task."""
    return frozenset(inspect.signature(Task).parameters) - _NOT_TASK_FIELDS


@dataclass(frozen=True, slots=True)
class _Declaration:
    """One task declared on a router: what ``add_task`` will be called with."""

    fn: Callable[..., Any] | str
    trigger: BaseTrigger | str | None
    trigger_args: dict[str, Any]
    options: dict[str, Any]

    @property
    def task_id(self) -> str:
        given = self.options.get("id")
        return given if given is not None else _default_id(self.fn)


def _default_id(fn: Callable[..., Any] | str) -> str:
    """``module:qualname``: the same at every start of the program, so a persistent
    store finds the task again (a ``"module:function"`` reference is its own id)."""
    if isinstance(fn, str):
        return fn
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname:
        raise RouterError(
            f"{fn!r} has no module and qualified name to make a stable task id from; "
            "give the task an id= of its own"
        )
    return f"{module}:{qualname}"


def _merge(outer: dict[str, Any], inner: dict[str, Any]) -> dict[str, Any]:
    """``inner``'s options over ``outer``'s, except those that add up (``tags``)."""
    merged = {**outer, **inner}
    for name in _MERGED & outer.keys() & inner.keys():
        merged[name] = set(outer[name]) | set(inner[name])
    return merged


class TaskRouter:
    """Task declarations, collected without a scheduler; see :mod:`tickwork.routers`.

    ``name`` names the router in error messages (default: the module that made it).
    Every other keyword is an ``add_task`` option (``store``, ``executor``, ``coalesce``,
    ``max_instances``, ``mistrigger_grace_time``, ``replace_existing`` ...)
    that becomes the default of each task declared on this router and on the routers
    included in it.
    """

    def __init__(self, name: str | None = None, **defaults: Any) -> None:
        if name is None:
            caller = sys._getframe(1).f_globals.get("__name__", "?")
            name = str(caller)
        self.name = name
        unknown = [key for key in defaults if key not in _task_options() or key in _NOT_DEFAULTS]
        if unknown:
            allowed = sorted(_task_options() - _NOT_DEFAULTS)
            raise ConfigurationError(
                unknown_names_message(f"TaskRouter({name!r})", unknown, allowed)
            )
        self.defaults = defaults
        self._declarations: list[_Declaration] = []
        self._children: list[TaskRouter] = []
        self._parent: TaskRouter | None = None
        #: The schedulers that included this router (directly or through a parent).
        self._schedulers: weakref.WeakSet[Any] = weakref.WeakSet()

    def __repr__(self) -> str:
        return f"TaskRouter({self.name!r}, {len(self._declarations)} tasks)"

    # -- declaring tasks ----------------------------------------------------------------------

    @overload
    def add_task(
        self, fn: None = None, trigger: BaseTrigger | str | None = None, **options: Any
    ) -> Callable[[F], F]: ...

    @overload
    def add_task(self, fn: F, trigger: BaseTrigger | str | None = None, **options: Any) -> F: ...

    @overload
    def add_task(
        self, fn: str, trigger: BaseTrigger | str | None = None, **options: Any
    ) -> str: ...

    def add_task(
        self,
        fn: Callable[..., Any] | str | None = None,
        trigger: BaseTrigger | str | None = None,
        **options: Any,
    ) -> Any:
        """Declare a task, with everything ``scheduler.add_task`` takes: a trigger
        instance, or an alias with its keywords, and the task's options.

        As a decorator, ``@router.add_task(trigger="cron", hour=3)``, it returns the
        function unchanged; called with the function (or a ``"module:function"``
        reference), it declares it and returns it. The id defaults to ``module:qualname``.
        Raises at once what ``add_task`` would raise for the trigger and the options.
        """
        if fn is None:
            # The trigger now: a misspelt keyword fails on the decorator's own line.
            _check_trigger(trigger, _split(options)[1])

            def decorator(function: F) -> F:
                self._declare(function, trigger, options)
                return function

            return decorator
        self._declare(fn, trigger, options)
        return fn

    def interval(
        self,
        *,
        weeks: float = 0,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        start_at: datetime | date | str | None = None,
        end_at: datetime | date | str | None = None,
        timezone: str | tzinfo | None = None,
        jitter: float | timedelta | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        """Decorator: run the function on an ``interval`` trigger
        (:class:`~tickwork.triggers.interval.IntervalTrigger`'s keywords), with the
        task ``options`` of :meth:`add_task`."""
        given = _given(
            weeks=weeks,
            days=days,
            hours=hours,
            minutes=minutes,
            seconds=seconds,
            start_at=start_at,
            end_at=end_at,
            timezone=timezone,
            jitter=jitter,
        )
        return self.add_task(None, "interval", **given, **options)

    def cron(
        self,
        *,
        year: int | str | None = None,
        month: int | str | None = None,
        day: int | str | None = None,
        week: int | str | None = None,
        day_of_week: int | str | None = None,
        hour: int | str | None = None,
        minute: int | str | None = None,
        second: int | str | None = None,
        start_at: datetime | date | str | None = None,
        end_at: datetime | date | str | None = None,
        timezone: str | tzinfo | None = None,
        jitter: float | timedelta | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        """Decorator: run the function on a ``cron`` trigger
        (:class:`~tickwork.triggers.cron.CronTrigger`'s fields), with the task
        ``options`` of :meth:`add_task`."""
        given = _given(
            year=year,
            month=month,
            day=day,
            week=week,
            day_of_week=day_of_week,
            hour=hour,
            minute=minute,
            second=second,
            start_at=start_at,
            end_at=end_at,
            timezone=timezone,
            jitter=jitter,
        )
        return self.add_task(None, "cron", **given, **options)

    def _declare(
        self, fn: Callable[..., Any] | str, trigger: BaseTrigger | str | None, given: dict[str, Any]
    ) -> None:
        self._check_open("declare a task on")
        options, trigger_args = _split(given)
        declaration = _Declaration(fn, trigger, trigger_args, options)
        _check(declaration)
        for other in self._declarations:
            if other.task_id == declaration.task_id:
                raise RouterError(
                    f"router {self.name!r} already has a task with id {declaration.task_id!r}; "
                    "give one of them another id="
                )
        self._declarations.append(declaration)

    # -- nesting --------------------------------------------------------------------------------

    def include_router(self, router: TaskRouter) -> None:
        """Make ``router``'s tasks (and those of the routers included in it) part of this
        router's, with this router's defaults under their own."""
        if not isinstance(router, TaskRouter):
            raise RouterError(f"include_router takes a TaskRouter, got {router!r}")
        self._check_open("include a router in")
        if router is self or router in self._ancestors():
            raise RouterError(f"router {router.name!r} cannot include itself (directly or not)")
        if router._parent is not None:
            raise RouterError(
                f"router {router.name!r} is already included in router {router._parent.name!r}; "
                "a router is included once"
            )
        router._parent = self
        self._children.append(router)

    def _ancestors(self) -> Iterator[TaskRouter]:
        parent = self._parent
        while parent is not None:
            yield parent
            parent = parent._parent

    def _check_open(self, what: str) -> None:
        """Refuse a change once a scheduler included this router (or a router holding
        it): that scheduler would never see the change."""
        if len(self._schedulers):
            raise RouterError(
                f"cannot {what} router {self.name!r}: a scheduler has already included it; "
                "declare tasks (and include routers) before scheduler.include_router()"
            )

    def _walk(self, inherited: dict[str, Any]) -> Iterator[tuple[TaskRouter, _Declaration]]:
        """Every declaration of this router and its children, depth first, with the
        routers' defaults merged into its options."""
        defaults = _merge(inherited, self.defaults)
        for declaration in self._declarations:
            options = _merge(defaults, declaration.options)
            yield (
                self,
                _Declaration(
                    declaration.fn, declaration.trigger, declaration.trigger_args, options
                ),
            )
        for child in self._children:
            yield from child._walk(defaults)

    def _tree(self) -> Iterator[TaskRouter]:
        yield self
        for child in self._children:
            yield from child._tree()


def _given(**values: Any) -> dict[str, Any]:
    """The trigger keywords given (not None): ``hour=0`` is a value, not a default."""
    return {name: value for name, value in values.items() if value is not None}


def _split(given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``add_task`` keywords split into the task's options and its trigger's keywords."""
    names = _task_options()
    options = {k: v for k, v in given.items() if k in names}
    return options, {k: v for k, v in given.items() if k not in names}


def _check_trigger(
    trigger: BaseTrigger | str | None, trigger_args: dict[str, Any]
) -> BaseTrigger | None:
    """The trigger ``add_task`` would build, or its error (built in the local zone: the
    scheduler builds its own, in its zone, when the router is included)."""
    if isinstance(trigger, BaseTrigger):
        if trigger_args:
            raise ConfigurationError(
                f"trigger keywords {sorted(trigger_args)} go with a trigger alias, not with "
                f"{trigger!r}"
            )
        return trigger
    if trigger is None and not trigger_args:
        return None
    return create_trigger(trigger or "date", **trigger_args)


def _check(declaration: _Declaration) -> None:
    """Build the trigger and a task from the declaration, so what ``add_task`` would
    refuse is refused now, where it is written (then both are dropped)."""
    trigger = _check_trigger(declaration.trigger, declaration.trigger_args)
    if callable(declaration.fn):  # (a reference is imported when the task is added)
        fields = _task_fields()
        Task(
            declaration.fn,
            trigger,
            id=declaration.task_id,
            **{k: v for k, v in declaration.options.items() if k in fields and k != "id"},
        )


def include_router(scheduler: TaskAdder, router: TaskRouter) -> list[Task]:
    """Add every task of ``router`` (and of the routers included in it) to
    ``scheduler``; see :meth:`~tickwork.schedulers.BaseScheduler.include_router`."""
    if not isinstance(router, TaskRouter):
        raise RouterError(f"include_router takes a TaskRouter, got {router!r}")
    tree = list(router._tree())
    for member in tree:
        if scheduler in member._schedulers:
            raise RouterError(
                f"router {member.name!r} is already included in this scheduler; a router "
                "is included once"
            )
    declared = list(router._walk({}))
    seen: dict[str, TaskRouter] = {}
    for owner, declaration in declared:
        first = seen.setdefault(declaration.task_id, owner)
        if first is not owner:
            raise RouterError(
                f"routers {first.name!r} and {owner.name!r} both declare a task with id "
                f"{declaration.task_id!r}; give one of them another id="
            )
    tasks = [_add(scheduler, declaration) for _, declaration in declared]
    for member in tree:
        member._schedulers.add(scheduler)
    _logger.debug("router %r included: %d task(s)", router.name, len(tasks))
    return tasks


def _add(scheduler: TaskAdder, declaration: _Declaration) -> Task:
    options = dict(declaration.options)
    options["id"] = declaration.task_id
    options.setdefault("replace_existing", True)
    trigger = declaration.trigger
    if isinstance(trigger, BaseTrigger) and not trigger.shareable:
        # A trigger that anchors itself on first use must not carry one scheduler's
        # anchor into another's copy of the router.
        trigger = copy.deepcopy(trigger)
    task: Task = scheduler.add_task(declaration.fn, trigger, **declaration.trigger_args, **options)
    return task
