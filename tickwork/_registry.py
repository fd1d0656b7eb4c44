"""Thin alias registries: ``"interval"`` → IntervalTrigger, ``{"type": "file"}`` → FileStore.

Explicit instances always work; aliases are a convenience on top. Classes are named by
``"module:qualname"`` and imported on first use, so ``import tickwork`` does not import
SQLAlchemy, Redis or croniter.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from tickwork._spelling import unknown_names_message
from tickwork.exceptions import ConfigurationError, UnknownAliasError
from tickwork.utils import call_shape, ref_to_obj

__all__ = ["Registry"]


class Registry:
    """A named set of ``alias -> "module:Class"`` entries of one kind (trigger, store ...)."""

    def __init__(
        self,
        kind: str,
        entries: dict[str, str],
        on_register: Callable[[], object] | None = None,
    ) -> None:
        self.kind = kind
        #: Called after an alias is (re)registered: caches of built objects go stale.
        self._on_register = on_register
        self._entries = dict(entries)
        #: Classes already imported, by alias (cleared when an alias is registered).
        self._classes: dict[str, type] = {}
        #: Keyword sets already checked against a class: ``create`` runs on every
        #: ``add_task`` with a trigger alias, and the check is the same every time.
        self._accepted: set[tuple[type, tuple[str, ...]]] = set()

    def register(self, alias: str, ref: str | type) -> None:
        """Make ``alias`` name the class ``ref`` (a class or its ``"module:qualname"``)."""
        self._entries[alias] = (
            ref if isinstance(ref, str) else f"{ref.__module__}:{ref.__qualname__}"
        )
        self._classes.clear()
        self._accepted.clear()
        if self._on_register is not None:
            self._on_register()

    def aliases(self) -> list[str]:
        """Every registered alias."""
        return sorted(self._entries)

    def lookup(self, alias: str) -> type:
        """Return the class behind ``alias``, or raise :class:`UnknownAliasError`."""
        try:
            return self._classes[alias]
        except (KeyError, TypeError):
            pass
        try:
            ref = self._entries[alias]
        except (KeyError, TypeError):
            raise UnknownAliasError(self.kind, alias, list(self._entries)) from None
        cls: type = ref_to_obj(ref)
        self._classes[alias] = cls
        return cls

    def create(self, alias: str, options: dict[str, Any]) -> Any:
        """Build the class behind ``alias`` with ``options``, checking the keywords first so
        a misspelt option is reported by name rather than as a bare ``TypeError``."""
        cls = self._classes.get(alias) if type(alias) is str else None
        if cls is None:
            cls = self.lookup(alias)
        checked = (cls, tuple(options))
        if checked in self._accepted:
            return cls(**options)
        shape = call_shape(cls)
        if shape is not None and shape.accepts((), options):
            self._accepted.add(checked)
            return cls(**options)
        signature = inspect.signature(cls)
        try:
            signature.bind(**options)
        except TypeError as exc:
            raise ConfigurationError(
                _binding_error(f"{self.kind} {alias!r}", cls, signature, options, exc)
            ) from None
        return cls(**options)


def _binding_error(
    what: str, cls: type, signature: inspect.Signature, options: dict[str, Any], exc: TypeError
) -> str:
    """The message for ``options`` that do not build ``cls``: the options it does not
    take, each with the right spelling when one is close (``unknown_names_message``),
    or else Python's reason (a required option missing) and the options it takes."""
    owner = f"{what} ({cls.__name__})"
    parameters = signature.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        unknown: list[str] = []
    else:
        unknown = [name for name in options if name not in signature.parameters]
    accepted = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if unknown:
        return unknown_names_message(owner, unknown, accepted)
    takes = f"it takes: {', '.join(accepted)}" if accepted else "it takes no options"
    return f"{owner} cannot be built from the options {sorted(options)}: {exc}; {takes}"
