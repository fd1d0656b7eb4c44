"""The checks and shared values behind :class:`~tickwork.tasks.Task`'s fields.

Every value a task is built or updated with goes through one of the ``check_*`` functions
here, which raise :class:`~tickwork.exceptions.InvalidTaskError` naming the value.
"""

from __future__ import annotations

import functools
import inspect
import os
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from tickwork.exceptions import InvalidTaskError

__all__ = [
    "EMPTY_ARGS",
    "EMPTY_KWARGS",
    "MODIFIABLE_FIELDS",
    "UNSET",
    "check_args",
    "check_executor",
    "check_grace",
    "check_kwargs",
    "check_max_instances",
    "check_next_run_time",
    "default_name",
    "is_coroutine_function",
    "new_id",
]


class _Unset:
    """The marker for "not given": the scheduler's ``task_defaults`` fill it in."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final[Any] = _Unset()

EMPTY_ARGS: tuple[Any, ...] = ()


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
        return "EMPTY_KWARGS"

    def __repr__(self) -> str:
        return "{}"


EMPTY_KWARGS: dict[str, Any] = _NoKwargs()

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

# 128 random bits in hex, the shape of uuid4().hex, without building a UUID object or
# asking the kernel for entropy on every task (0.3 µs instead of 3.3 µs): from a generator
# seeded from os.urandom, reseeded in forked children so two gunicorn workers never hand
# out the same ids. Ids need uniqueness, not secrecy.
_id_bits = random.Random()
if hasattr(os, "register_at_fork"):  # (POSIX only; Windows has no fork)
    os.register_at_fork(after_in_child=_id_bits.seed)
_random_bytes = _id_bits.randbytes


def new_id() -> str:
    """A new task id: 32 random hex digits."""
    return _random_bytes(16).hex()


def check_args(args: Any) -> tuple[Any, ...]:
    """``args`` as a tuple (any iterable but a string)."""
    if isinstance(args, str | bytes):
        raise InvalidTaskError(f"args must be a list or tuple, got the string {args!r}")
    return tuple(args) if args else EMPTY_ARGS


def check_kwargs(kwargs: Any) -> dict[str, Any]:
    """``kwargs`` as a dict of its own (the shared empty one when there are none)."""
    if not kwargs:
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise InvalidTaskError(f"kwargs must be a mapping, got {kwargs!r}")
        return EMPTY_KWARGS
    if not isinstance(kwargs, Mapping):
        raise InvalidTaskError(f"kwargs must be a mapping, got {kwargs!r}")
    return dict(kwargs)


def default_name(fn: Any) -> str:
    """A task's name when none is given: its callable's qualified name."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return str(name) if name else repr(fn)


def check_executor(executor: Any) -> str:
    """An executor alias."""
    if not isinstance(executor, str):
        raise InvalidTaskError(f"executor must be an alias string, got {executor!r}")
    return executor


def check_max_instances(value: Any) -> int:
    """An integer of at least 1."""
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidTaskError(f"max_instances must be an integer >= 1, got {value!r}")
    if value < 1:
        raise InvalidTaskError(f"max_instances must be an integer >= 1, got {value!r}")
    return int(value)


def check_next_run_time(value: Any) -> datetime | None:
    """A timezone-aware datetime, or ``None`` (paused)."""
    if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
        raise InvalidTaskError(
            f"next_run_time must be a timezone-aware datetime or None, got {value!r}"
        )
    return value


def check_grace(value: Any) -> float | None:
    """Seconds (a number or a timedelta) of at least 0, or ``None`` (no limit)."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidTaskError(
            f"mistrigger_grace_time must be seconds >= 0, a timedelta or None, got {value!r}"
        )
    return float(value)


def is_coroutine_function(fn: Callable[..., Any]) -> bool:
    """True when ``fn`` is an ``async def`` function, looked for through ``partial``s."""
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
