"""The checks and shared values behind :class:`~tickwork.tasks.Task`'s fields.

Every value a task is built or updated with goes through one of the ``check_*`` functions
here, which raise :class:`~tickwork.exceptions.InvalidTaskError` naming the value.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import random
from collections.abc import Callable, Mapping, Set
from datetime import datetime, timedelta, timezone
from typing import Any, Final
from zoneinfo import ZoneInfo

from tickwork.exceptions import InvalidTaskError
from tickwork.utils import from_pytz_datetime, is_pytz

__all__ = [
    "EMPTY_ARGS",
    "EMPTY_KWARGS",
    "EMPTY_TAGS",
    "MODIFIABLE_FIELDS",
    "RULE_CHECKS",
    "UNSET",
    "check_args",
    "check_coalesce",
    "check_executor",
    "check_grace",
    "check_kwargs",
    "check_max_instances",
    "check_next_run_time",
    "check_tag",
    "check_tags",
    "default_name",
    "is_coroutine_function",
    "new_id",
    "resolve_rules",
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
        "timeout",
        "retries",
        "retry_delay",
        "retry_backoff",
        "retry_on",
        "cooldown",
        "leader_only",
        "tags",
    }
)

#: The tags of every untagged task: one shared empty frozenset.
EMPTY_TAGS: frozenset[str] = frozenset()

#: The most tags one task may have, and the longest tag: SQL keeps a tag in an indexed
#: column, and a task with hundreds of tags is a mistake (a list passed where a set of
#: names was meant), not a design.
MAX_TAGS = 32
MAX_TAG_LENGTH = 191


def check_tag(tag: Any) -> str:
    """One tag as given to ``get_tasks(tag=)`` and the like: a non-empty string of at most
    :data:`MAX_TAG_LENGTH` characters."""
    if not isinstance(tag, str):
        raise InvalidTaskError(f"a tag must be a string, got {tag!r}")
    if not tag:
        raise InvalidTaskError("a tag must not be the empty string")
    if "\0" in tag:  # (the Redis store's tag index separates tag and id with it)
        raise InvalidTaskError(f"a tag must not contain NUL characters, got {tag!r}")
    if len(tag) > MAX_TAG_LENGTH:
        raise InvalidTaskError(
            f"tag {tag[:40]!r}... is {len(tag)} characters long; at most {MAX_TAG_LENGTH}"
        )
    return tag


def check_tags(tags: Any) -> frozenset[str]:
    """``tags`` as a frozenset: ``None`` means none; else a set (or list, tuple, other
    iterable) of tags, each as :func:`check_tag` says, at most :data:`MAX_TAGS` of them.

    A bare string is refused (``tags="billing"`` would be seven one-letter tags): the
    message says to write ``tags={"billing"}``."""
    if tags is None:
        return EMPTY_TAGS
    if isinstance(tags, str | bytes):
        raise InvalidTaskError(
            f"tags must be a set of strings, got the bare string {tags!r}; write tags={{{tags!r}}}"
        )
    if isinstance(tags, Mapping):
        raise InvalidTaskError(f"tags must be a set of strings, got the mapping {tags!r}")
    try:
        given = list(tags)
    except TypeError:
        raise InvalidTaskError(f"tags must be a set of strings, got {tags!r}") from None
    if not given:
        return EMPTY_TAGS
    result = frozenset(check_tag(tag) for tag in given)
    if len(result) > MAX_TAGS:
        raise InvalidTaskError(f"a task may have at most {MAX_TAGS} tags, got {len(result)}")
    return result


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
    """``args`` as a tuple: ``None`` means no arguments, any other value must be a list,
    tuple or other ordered iterable.

    Refused, naming the value: what is not iterable (``args=1``, ``args=0``: ``0`` is not
    "no arguments"), a string or bytes (iterable, but ``args="abc"`` is almost always
    ``args=["abc"]`` mistyped), a mapping (meant for ``kwargs``) and a set (no order to
    pass its items in).
    """
    if type(args) is tuple:  # (the common cases first: this runs on every add_task)
        return args or EMPTY_ARGS
    if type(args) is list:
        return tuple(args) if args else EMPTY_ARGS
    if args is None:
        return EMPTY_ARGS
    if isinstance(args, str | bytes | bytearray):
        raise InvalidTaskError(
            f"args must be a list or tuple of arguments, got the {type(args).__name__} "
            f"{args!r}; for a single argument write args=[{args!r}]"
        )
    if isinstance(args, Mapping):
        raise InvalidTaskError(
            f"args must be a list or tuple of arguments, got the mapping {args!r}; "
            "keyword arguments go in kwargs="
        )
    if isinstance(args, Set):
        raise InvalidTaskError(
            f"args must be a list or tuple of arguments, got the set {args!r}, "
            "whose order is arbitrary"
        )
    try:
        values = tuple(args)
    except TypeError:
        raise InvalidTaskError(
            f"args must be a list or tuple of arguments (or None for none), got {args!r}; "
            f"for a single argument write args=[{args!r}]"
        ) from None
    return values or EMPTY_ARGS


def check_kwargs(kwargs: Any) -> dict[str, Any]:
    """``kwargs`` as a dict of its own (the shared empty one when there are none):
    ``None`` or a mapping with string keys; anything else is refused naming the value."""
    if kwargs is None:
        return EMPTY_KWARGS
    if not isinstance(kwargs, Mapping):
        hint = "; for keyword arguments write kwargs={'name': value}"
        if isinstance(kwargs, list | tuple) and kwargs and isinstance(kwargs[0], list | tuple):
            hint = "; for pairs write kwargs=dict(...)"
        raise InvalidTaskError(f"kwargs must be a mapping (or None), got {kwargs!r}{hint}")
    if not kwargs:
        return EMPTY_KWARGS
    for key in kwargs:
        if type(key) is not str:
            raise InvalidTaskError(
                f"kwargs keys must be parameter names (strings), got {key!r} in {kwargs!r}"
            )
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
    """A timezone-aware datetime, or ``None`` (paused). One in a pytz zone is re-expressed
    in the zoneinfo equivalent (see :func:`tickwork.utils.from_pytz_datetime`)."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidTaskError(
            f"next_run_time must be a timezone-aware datetime or None, got {value!r}"
        )
    zone = value.tzinfo
    if type(zone) is not ZoneInfo and type(zone) is not timezone and is_pytz(zone):
        return from_pytz_datetime(value)
    return value


def check_coalesce(value: Any) -> bool:
    """``True`` or ``False``, nothing else: ``coalesce="no"`` would otherwise be true."""
    if value is True or value is False:
        return value
    raise InvalidTaskError(f"coalesce must be True or False, got {value!r}")


def check_grace(value: Any) -> float | None:
    """Seconds (a finite number above 0, or a timedelta), or ``None`` (no limit).

    0 is refused: a run is picked up a few milliseconds after its time at best (the
    scheduler's pass takes that long), so "no lateness allowed" would miss every run.
    """
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 < seconds < math.inf  # (NaN fails every comparison)
    ):
        hint = ""
        if seconds == math.inf:
            hint = "; use None for no limit"
        elif seconds == 0:
            hint = (
                "; use None for no limit, or a small positive number of seconds (0 would "
                "miss every run: a run is picked up a few milliseconds late at best)"
            )
        raise InvalidTaskError(
            f"mistrigger_grace_time must be seconds > 0, a timedelta or None, got {value!r}{hint}"
        )
    return float(seconds)


#: The run rules a task takes from its scheduler's ``task_defaults`` when it leaves them
#: unset, each with the check its value goes through: the one list of them.
RULE_CHECKS: Final[dict[str, Callable[[Any], Any]]] = {
    "coalesce": check_coalesce,
    "max_instances": check_max_instances,
    "mistrigger_grace_time": check_grace,
}


def resolve_rules(
    coalesce: Any, max_instances: Any, grace: Any, defaults: Mapping[str, Any] | None
) -> tuple[Any, Any, Any]:
    """A task's run rules, the one place defaults are filled in: each value given is
    checked, each left ``UNSET`` comes from ``defaults`` (checked when the scheduler
    took them), or stays ``UNSET`` without defaults (a ``Task`` built before it is added
    to a scheduler, which fills them through this same function when it is added)."""
    if coalesce is UNSET:
        coalesce = UNSET if defaults is None else defaults["coalesce"]
    else:
        coalesce = check_coalesce(coalesce)
    if max_instances is UNSET:
        max_instances = UNSET if defaults is None else defaults["max_instances"]
    else:
        max_instances = check_max_instances(max_instances)
    if grace is UNSET:
        grace = UNSET if defaults is None else defaults["mistrigger_grace_time"]
    else:
        grace = check_grace(grace)
    return coalesce, max_instances, grace


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
