"""Pickle: for arguments JSON cannot express (your own classes, enums, ...), by choice.

The function is still stored by reference, like with JSON. Only use this serializer with
a store nobody else can write to: unpickling data runs whatever code the data names.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

from tickwork.security.modules import restricted_loads
from tickwork.serializers.base import (
    BaseSerializer,
    cannot_load,
    cannot_store,
    protected_record,
    short_repr,
    task_from_state,
    task_state,
)
from tickwork.tasks import Task

__all__ = ["PickleSerializer"]

_WAYS_OUT = (
    "pass plain data that can be pickled (or that the object re-creates), or use the memory store"
)


class PickleSerializer(BaseSerializer):
    """Tasks as pickled state dicts; see
    :class:`~tickwork.serializers.base.BaseSerializer` for the contract.

    ``protocol`` defaults to :data:`pickle.DEFAULT_PROTOCOL`, which every supported
    Python version reads.
    """

    name = "pickle"

    def __init__(self, protocol: int = pickle.DEFAULT_PROTOCOL) -> None:
        self.protocol = protocol

    def serialize(self, task: Task) -> bytes:
        """Return the pickled task state, or raise ``SerializationError``."""
        state = task_state(task)
        try:
            return pickle.dumps(state, protocol=self.protocol)
        except Exception as exc:
            # pickle raises PicklingError, TypeError or AttributeError depending on the
            # object; find the value that fails so the message can point at it.
            where, value, error = _find_unpicklable(state, self.protocol) or ("", state, exc)
            raise cannot_store(
                task.id,
                f"{where} = {short_repr(value)}",
                f"cannot be pickled ({type(error).__name__}: {error})",
                _WAYS_OUT,
            ) from None

    def deserialize(self, data: bytes) -> Task:
        """Return the task the pickle holds, or raise ``SerializationError``."""
        try:
            state = restricted_loads(data)
        except Exception as exc:
            reason = protected_record(data)
            raise cannot_load(
                None, reason or f"the data cannot be unpickled ({type(exc).__name__}: {exc})"
            ) from None
        return task_from_state(state)

    def __repr__(self) -> str:
        return f"PickleSerializer(protocol={self.protocol})"


def _find_unpicklable(state: dict[str, Any], protocol: int) -> tuple[str, Any, Exception] | None:
    """Return (path, value, error) of the innermost value that fails to pickle."""
    for key, value in state.items():
        found = _innermost(value, key, protocol, set())
        if found is not None:
            return found
    return None


def _innermost(
    value: Any, path: str, protocol: int, seen: set[int]
) -> tuple[str, Any, Exception] | None:
    try:
        pickle.dumps(value, protocol=protocol)
    except Exception as exc:
        if id(value) not in seen:
            seen.add(id(value))
            for step, item in _children(value):
                found = _innermost(item, path + step, protocol, seen)
                if found is not None:
                    return found
        return path, value, exc
    return None


def _children(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"[{key!r}]", item
    elif isinstance(value, list | tuple | set | frozenset):
        yield from ((f"[{index}]", item) for index, item in enumerate(value))
    elif hasattr(value, "__dict__"):
        for key, item in vars(value).items():
            yield f".{key}", item
