"""The serializer contract: how a persistent store turns a task into bytes and back.

The docstrings of :class:`BaseSerializer` are the specification; the helpers below are
shared by the serializers tickwork ships so every one of them words its errors the same
way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tickwork.exceptions import (
    InvalidTaskError,
    InvalidTriggerError,
    ReferenceResolutionError,
    SerializationError,
)
from tickwork.serializers._checks import check_trigger, short_repr
from tickwork.tasks import UNSET, Task

__all__ = [
    "BaseSerializer",
    "cannot_load",
    "cannot_store",
    "short_repr",
    "task_from_state",
    "task_state",
]


class BaseSerializer(ABC):
    """Turns a :class:`~tickwork.tasks.Task` into bytes and back.

    Rules every serializer follows:

    * What is written is the task's state (``Task.__getstate__``): the function only as
      its ``"module:qualname"`` reference, never as code. A task whose function has no
      such reference (a lambda, a closure, a bound method of an instance, a
      ``functools.partial``) cannot be stored.
    * :meth:`serialize` either returns the complete bytes or raises
      :class:`~tickwork.exceptions.SerializationError`; it never returns something that
      :meth:`deserialize` of the same serializer cannot read back. The message names the
      task id, the offending value and where it sits (``"kwargs['x']"``), and the way out.
    * :meth:`deserialize` returns a new task (``store_alias`` unset: the store sets it) or
      raises ``SerializationError`` naming the task id (when it can be read at all) and
      the reason, e.g. a function that no longer exists. Stores log and skip such tasks;
      they never delete them.
    * Both are thread-safe and keep no state between calls.
    """

    #: A short name for messages and for ``serializer="..."`` options.
    name: str = "custom"

    @abstractmethod
    def serialize(self, task: Task) -> bytes:
        """Return ``task`` as bytes, or raise ``SerializationError`` (see the class doc)."""

    @abstractmethod
    def deserialize(self, data: bytes) -> Task:
        """Return the task ``data`` holds, or raise ``SerializationError``."""

    def check(self, task: Task) -> None:
        """Raise ``SerializationError`` if :meth:`serialize` would refuse ``task``.

        Unlike ``serialize`` it accepts a task whose ``next_run_time`` is not computed yet
        (a task added before the scheduler starts): stores call it from
        ``validate_task`` so a lambda is refused where it is added, not at start.
        """
        if task.next_run_time is UNSET:
            task = _with_next_run_time(task, None)
        self.serialize(task)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# -- shared helpers ------------------------------------------------------------------------


def cannot_store(task_id: str, what: str, reason: str, ways_out: str) -> SerializationError:
    """Build the error for a task that cannot be written.

    ``what`` says which value and where (``"kwargs['x'] = <lock object>"``), ``reason``
    why it cannot be kept and ``ways_out`` what the user can do instead.
    """
    return SerializationError(f"task {task_id!r} cannot be stored: {what} {reason}; {ways_out}")


def cannot_load(task_id: object, reason: str) -> SerializationError:
    """Build the error for stored data that cannot be turned back into a task."""
    who = f"task {task_id!r}" if isinstance(task_id, str) else "a stored task (id unreadable)"
    return SerializationError(
        f"{who} cannot be loaded: {reason}; it is left in the store untouched so it can be "
        "fixed or deleted by hand"
    )


def task_state(task: Task) -> dict[str, Any]:
    """Return ``task.__getstate__()``, turning a missing function reference into a
    ``SerializationError`` that says what to do about it."""
    try:
        state = task.__getstate__()
    except ReferenceResolutionError as exc:
        fn = getattr(task, "fn", None)
        raise cannot_store(
            task.id,
            f"its function {fn!r}",
            f"cannot be stored by reference ({exc})",
            "use a module-level function (one importable as 'package.module:function'), "
            "pass the data it needs as args/kwargs, or use the memory store",
        ) from None
    for value in state.values():
        if value is UNSET:
            break
    else:
        return state  # the common case, checked without building anything
    unset = sorted(key for key, value in state.items() if value is UNSET)
    raise cannot_store(
        task.id,
        f"its field(s) {', '.join(unset)}",
        "have no value yet (UNSET)",
        "add the task through a scheduler, which fills them from task_defaults, "
        "or give them when creating the Task",
    )


def _with_next_run_time(task: Task, next_run_time: datetime | None) -> Task:
    """A shallow copy of ``task`` with another next run time (the original is untouched)."""
    clone = task._shallow_copy()
    clone.next_run_time = next_run_time
    return clone


def task_from_state(state: object) -> Task:
    """Build a task from a decoded state dict (its trigger rebuilt already), turning every
    failure into a ``SerializationError`` that names the task id.

    Every field's type and range is checked (by ``Task.__setstate__``, then the
    trigger's here; see ``_checks.py``): a state that decodes but holds values a task
    cannot run with is refused at load, rather than failing later inside a scheduler's
    processing pass.
    """
    task_id = state.get("id") if isinstance(state, Mapping) else None
    if not isinstance(state, Mapping):
        raise cannot_load(None, f"expected a task state mapping, found {type(state).__name__}")
    try:
        task = Task.from_state(state)
        check_trigger(task.trigger, task.next_run_time)
    except ReferenceResolutionError as exc:
        raise cannot_load(
            task_id, f"its function no longer imports ({exc}); restore the function or module"
        ) from None
    except (InvalidTaskError, InvalidTriggerError) as exc:
        raise cannot_load(task_id, str(exc)) from None
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise cannot_load(task_id, f"malformed state ({type(exc).__name__}: {exc})") from None
    return task


def protected_record(data: object) -> str | None:
    """Why ``data`` cannot be read by a plain serializer when it is a signed or
    encrypted record (``None`` otherwise): a scheduler without the fleet's keys then
    says so, rather than that the data is broken. Called on the error path only."""
    from tickwork.security.encryption import MAGIC as ENCRYPTED
    from tickwork.security.signing import MAGIC as SIGNED

    if not isinstance(data, bytes | bytearray):
        return None
    for magic, what, keyword in (
        (SIGNED, "signed", "signing_key"),
        (ENCRYPTED, "encrypted", "encryption_key"),
    ):
        if data.startswith(magic):
            return (
                f"the record is {what} and this scheduler has no {keyword}: give it the "
                "keys of the fleet that wrote the store (see docs/security.md)"
            )
    return None
