"""What many tasks have in common, kept once for all of them.

A million tasks that run the same function under the same rules differ only in their id,
name, arguments, trigger and next run time. Those fields stay on each
:class:`~tickwork.tasks.Task`; the rest (the callable and its reference, the executor, the
run rules and the scheduler it is bound to) form a :class:`TaskProfile`, interned so that
equal profiles are one object. A task then has 9 slots (a 112-byte object) instead of 16
(160 bytes). (The name stays on the task: names made per task, ``f"report-{user}"``, would
otherwise give every task a profile of its own.)

A profile is a tuple: immutable, hashed and compared in C. A task that changes a profile
field gets another profile; the one it had is left to the tasks still sharing it.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from tickwork._run_policy import RunPolicy
    from tickwork._task_owner import TaskOwner

__all__ = ["TaskProfile", "intern_profile", "make_profile"]


class TaskProfile(NamedTuple):
    """The fields a task shares with the other tasks of its kind."""

    fn: Callable[..., Any]
    #: The ``"module:qualname"`` ``fn`` was given as, or was found to have (else None).
    fn_ref: str | None
    executor: str
    #: The run rules; ``UNSET`` until the scheduler fills in its ``task_defaults``.
    coalesce: bool
    max_instances: int
    mistrigger_grace_time: float | None
    #: A weak reference to the scheduler the task was added to (None: not added yet).
    scheduler: weakref.ref[TaskOwner] | None
    #: ``timeout`` and the retry options (see :mod:`tickwork._run_policy`).
    policy: RunPolicy
    #: The parameter of ``fn`` that asks for a :class:`~tickwork.context.TaskContext`
    #: (``None``: none), read from its signature once (see :mod:`tickwork.context`).
    context: tuple[str, int] | None = None


#: ``make_profile((fn, fn_ref, ...))`` builds a profile from a tuple of its fields, in C:
#: the ``__new__`` that NamedTuple generates is Python-level, and this runs on every add.
make_profile: Callable[[tuple[Any, ...]], TaskProfile] = functools.partial(
    tuple.__new__, TaskProfile
)

#: Profiles by themselves. Bounded: tasks built from a new closure each would otherwise
#: keep every closure they ever had alive here; a profile dropped from the table stays
#: valid for the tasks holding it.
_PROFILES: dict[tuple[Any, ...], TaskProfile] = {}
_MAX_PROFILES = 4096
_lock = threading.Lock()


def intern_profile(fields: tuple[Any, ...]) -> TaskProfile:
    """The shared profile with these field values (a plain tuple in :class:`TaskProfile`
    order, or a profile): a profile is equal to the plain tuple of its fields, so a task
    that finds its profile builds none."""
    try:
        shared = _PROFILES.get(fields)
    except TypeError:  # an unhashable callable: this task keeps a profile of its own
        return make_profile(fields)
    if shared is None:
        profile = make_profile(fields)
        with _lock:
            if len(_PROFILES) >= _MAX_PROFILES:
                _PROFILES.clear()
            shared = _PROFILES.setdefault(profile, profile)
    # Equal is not enough for the callable: two equal callable objects are still two
    # objects, and a task runs the very one it was given.
    return shared if shared.fn is fields[0] else make_profile(fields)
