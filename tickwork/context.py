"""Shared dependencies for tasks: :class:`TaskContext` and the scheduler's resources.

An application hands its long-lived objects (a database pool, an HTTP client, settings)
to the scheduler once, as ``resources``, instead of keeping them in globals::

    scheduler = AsyncIOScheduler(resources={"db": pool})
    scheduler.resources.http = client          # also later, while it runs

A task asks for them with a parameter annotated :class:`TaskContext` (any name, any
position); the executor then passes a context holding the resources and the run's
``task_id``, ``scheduled_run_time``, ``attempt`` and ``run_id``::

    async def sync_users(ctx: TaskContext, since: int) -> None:
        rows = await ctx.resources.db.fetch(...)

Nothing of it is stored: a persistent store keeps the task as usual (without the
parameter, which is not an argument of the task), and each run gets a fresh context
built from the resources of the scheduler that runs it. Which parameter wants the
context is read from the signature once per function, when the task is added, and kept
in the task's profile; tasks without one pay nothing per run.

A process pool cannot take a context: its runs are pickled to another process, and
resources (pools, clients, locks) cannot be pickled in general, nor would a copy be the
application's object. Such a task is refused when it is added to a process-pool
executor (:class:`~tickwork.exceptions.InvalidTaskError` naming the executor).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from tickwork.exceptions import ConfigurationError
from tickwork.runs import make_run_id

__all__ = [
    "ContextSpec",
    "Resources",
    "TaskContext",
    "check_resources",
    "context_parameter",
    "pass_context",
    "with_context",
]

#: Where a function takes its context: (parameter name, its position among the
#: positional parameters, or -1 when it is keyword-only).
ContextSpec = tuple[str, int]


class Resources(SimpleNamespace):
    """The scheduler's resources: attributes set by the application (``resources.db =
    pool``), read by tasks through their :class:`TaskContext`. Never serialised."""


@dataclass(frozen=True, slots=True)
class TaskContext:
    """What a task that asks for it (a parameter annotated ``TaskContext``) gets per run:
    the scheduler's ``resources`` and which run this is."""

    #: The scheduler's :class:`Resources` (the very object: later changes show).
    resources: Resources
    task_id: str
    #: When the run was scheduled (for an instance of several overdue runs, made with
    #: ``coalesce=False``, the first of them).
    scheduled_run_time: datetime
    #: 1 for the first try, 2 for the first retry ...
    attempt: int = 1

    @property
    def run_id(self) -> str:
        """The id of this attempt's run record (as ``scheduler.get_runs`` shows it)."""
        return make_run_id(self.task_id, self.scheduled_run_time, self.attempt)


def check_resources(value: Any) -> Resources:
    """The ``resources`` keyword: ``None`` (empty), a mapping of names, or a
    ``SimpleNamespace``; anything else is refused naming it."""
    if value is None:
        return Resources()
    if isinstance(value, Resources):
        return value
    if isinstance(value, SimpleNamespace):
        return Resources(**vars(value))
    if isinstance(value, Mapping) and all(isinstance(key, str) for key in value):
        return Resources(**value)
    raise ConfigurationError(
        f"resources must be a dict of names (resources={{'db': pool}}) or a SimpleNamespace, "
        f"got {value!r}"
    )


@functools.lru_cache(maxsize=4096)
def _context_parameter(fn: Callable[..., Any]) -> ContextSpec | None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    position = 0
    for name, parameter in signature.parameters.items():
        kind = parameter.kind
        if kind is parameter.VAR_KEYWORD or kind is parameter.VAR_POSITIONAL:
            continue
        annotation = parameter.annotation
        if annotation is TaskContext or (
            isinstance(annotation, str) and annotation.rsplit(".", 1)[-1] == "TaskContext"
        ):
            return name, (-1 if kind is parameter.KEYWORD_ONLY else position)
        position += 1
    return None


def context_parameter(fn: Callable[..., Any]) -> ContextSpec | None:
    """Where ``fn`` takes a :class:`TaskContext` (the parameter annotated with it), or
    ``None`` (read once per function)."""
    try:
        return _context_parameter(fn)
    except TypeError:  # an unhashable callable
        return _context_parameter.__wrapped__(fn)


def pass_context(
    spec: ContextSpec, args: tuple[Any, ...], kwargs: Mapping[str, Any], value: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``args`` and ``kwargs`` with ``value`` given to the context parameter: inserted at
    its position when the task's positional arguments reach it (the task's arguments
    fill the *other* parameters), by keyword otherwise."""
    name, position = spec
    if 0 <= position <= len(args):
        return (*args[:position], value, *args[position:]), dict(kwargs)
    return args, {**kwargs, name: value}


def with_context(
    task: Any, spec: ContextSpec, resources: Resources, run_times: list[datetime], attempt: int
) -> Any:
    """A copy of ``task`` whose arguments give its context parameter the run's context
    (the stored task is left as it is)."""
    clone = task._shallow_copy()
    context = TaskContext(resources, task.id, run_times[0], attempt)
    clone.args, clone.kwargs = pass_context(spec, task.args, task.kwargs, context)
    return clone
