"""``allowed_modules``: which modules stored references may import.

Loading a record imports what it names: the task's function, its trigger class, its
``retry_on`` classes, and with the pickle serializer any global in the pickle. A record
written by someone else (a forged SQL row, a file planted in a shared directory) could
name ``os:system``. With an allow-list every such reference is checked *before* the
import, and a module outside the list is refused with :class:`ModuleNotAllowedError`
(the record is then set aside like any record that does not load).

The check runs inside :func:`ref_to_obj` while a policy is active (a context variable,
set by the store's secure serializer around a load), so every import path of a load is
covered without threading the policy through every decoder. Outside a load (adding a
task), :meth:`ModulePolicy.check_task` checks the task's references directly.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from tickwork.exceptions import ConfigurationError, ModuleNotAllowedError

__all__ = ["ModulePolicy", "active_policy", "check_reference", "restricted_loads"]

#: tickwork's own triggers are always allowed: a task needs one and they run no user code.
_ALWAYS = ("tickwork.triggers",)
#: What a pickled task state needs besides the allowed modules: plain data types only
#: (no ``builtins.eval``, no ``os``): a global is looked up by ``find_class`` and
#: could otherwise be called by the pickle with any arguments.
_PICKLE_SAFE_MODULES = ("datetime", "zoneinfo", "decimal", "uuid", "collections", "copyreg")
_PICKLE_SAFE_BUILTINS = frozenset(
    {"set", "frozenset", "bytearray", "bytes", "complex", "slice", "range", "object"}
)

_ACTIVE: ContextVar[ModulePolicy | None] = ContextVar("tickwork_allowed_modules", default=None)


class ModulePolicy:
    """An allow-list of module names (each also allows its sub-modules)."""

    def __init__(self, allowed: Iterable[str]) -> None:
        if isinstance(allowed, str):
            raise ConfigurationError(
                f"allowed_modules must be a list of module names, got the string {allowed!r}; "
                f"write allowed_modules=({allowed!r},)"
            )
        names = tuple(allowed)
        for name in names:
            if not isinstance(name, str) or not name or ":" in name or name.strip() != name:
                raise ConfigurationError(
                    f"allowed_modules holds {name!r}, which is not a module name "
                    "(write 'myapp.tasks', without ':function')"
                )
        self.allowed = names
        self._prefixes = tuple(n + "." for n in (*names, *_ALWAYS))
        self._exact = frozenset((*names, *_ALWAYS))

    def allows_module(self, module: str) -> bool:
        """True when ``module`` is listed, or inside a listed package."""
        return module in self._exact or module.startswith(self._prefixes)

    def check(self, ref: str) -> None:
        """Raise ``ModuleNotAllowedError`` unless ``ref``'s module is allowed.

        ``builtins`` is let through here (importing it runs nothing); what it resolves
        to is checked afterwards by :func:`check_resolved` (only exception classes,
        for ``retry_on``).
        """
        module = ref.partition(":")[0]
        if module != "builtins" and not self.allows_module(module):
            raise ModuleNotAllowedError(ref, self.allowed)

    def check_resolved(self, ref: str, obj: object) -> None:
        """Refuse a ``builtins`` object that is not an exception class (``builtins:eval``
        as a task function must never load)."""
        if ref.startswith("builtins:") and not (
            isinstance(obj, type) and issubclass(obj, BaseException)
        ):
            raise ModuleNotAllowedError(ref, self.allowed)

    def check_task(self, task: Any) -> None:
        """Check a task being added: its function, trigger class and ``retry_on``
        classes (a task the store could never load again is refused now)."""
        fn = task.fn
        module = getattr(fn, "__module__", None) or ""
        ref = f"{module}:{getattr(fn, '__qualname__', fn)}"
        self.check(ref)
        self.check_resolved(ref, fn)
        for cls in (type(task.trigger), *getattr(task, "retry_on", ())):
            ref = f"{cls.__module__}:{cls.__qualname__}"
            self.check(ref)
            self.check_resolved(ref, cls)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Check every reference resolved in this context (a load)."""
        token = _ACTIVE.set(self)
        try:
            yield
        finally:
            _ACTIVE.reset(token)

    def __repr__(self) -> str:
        return f"ModulePolicy({self.allowed!r})"


def active_policy() -> ModulePolicy | None:
    """The policy of the load running in this context, if any."""
    return _ACTIVE.get()


def check_reference(ref: str) -> None:
    """Raise ``ModuleNotAllowedError`` if a load is running under a policy that refuses
    ``ref`` (called by :func:`tickwork.utils.ref_to_obj` before it imports)."""
    policy = _ACTIVE.get()
    if policy is not None:
        policy.check(ref)


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, policy: ModulePolicy) -> None:
        super().__init__(io.BytesIO(data))
        self._policy = policy

    def find_class(self, module: str, name: str) -> Any:
        ref = f"{module}:{name}"
        if module == "builtins":
            if name not in _PICKLE_SAFE_BUILTINS:
                raise ModuleNotAllowedError(ref, self._policy.allowed)
        elif module not in _PICKLE_SAFE_MODULES:
            self._policy.check(ref)
        return super().find_class(module, name)


def restricted_loads(data: bytes) -> Any:
    """``pickle.loads``, but under an active policy every global the pickle names is
    checked before it is imported (a pickle can call any global it names)."""
    policy = _ACTIVE.get()
    if policy is None:
        return pickle.loads(data)
    return _Unpickler(data, policy).load()
