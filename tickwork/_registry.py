"""Thin alias registries: ``"interval"`` → IntervalTrigger, ``{"type": "file"}`` → FileStore.

Explicit instances always work; aliases are a convenience on top. Classes are named by
``"module:qualname"`` and imported on first use, so ``import tickwork`` does not import
SQLAlchemy, Redis or croniter.
"""

from __future__ import annotations

import inspect
from typing import Any

from tickwork.exceptions import ConfigurationError, UnknownAliasError
from tickwork.utils import call_shape, ref_to_obj

__all__ = ["Registry"]


class Registry:
    """A named set of ``alias -> "module:Class"`` entries of one kind (trigger, store ...)."""

    def __init__(self, kind: str, entries: dict[str, str]) -> None:
        self.kind = kind
        self._entries = dict(entries)

    def register(self, alias: str, ref: str | type) -> None:
        """Make ``alias`` name the class ``ref`` (a class or its ``"module:qualname"``)."""
        self._entries[alias] = (
            ref if isinstance(ref, str) else f"{ref.__module__}:{ref.__qualname__}"
        )

    def aliases(self) -> list[str]:
        """Every registered alias."""
        return sorted(self._entries)

    def lookup(self, alias: str) -> type:
        """Return the class behind ``alias``, or raise :class:`UnknownAliasError`."""
        try:
            ref = self._entries[alias]
        except (KeyError, TypeError):
            raise UnknownAliasError(self.kind, alias, list(self._entries)) from None
        cls: type = ref_to_obj(ref)
        return cls

    def create(self, alias: str, options: dict[str, Any]) -> Any:
        """Build the class behind ``alias`` with ``options``, checking the keywords first so
        a misspelt option is reported by name rather than as a bare ``TypeError``."""
        cls = self.lookup(alias)
        shape = call_shape(cls)  # cached: this runs on every add_task with a trigger alias
        if shape is not None and shape.accepts((), options):
            return cls(**options)
        try:
            inspect.signature(cls).bind(**options)
        except TypeError as exc:
            accepted = [
                name
                for name, p in inspect.signature(cls).parameters.items()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            ]
            raise ConfigurationError(
                f"{self.kind} {alias!r} ({cls.__name__}) does not take {sorted(options)}: {exc}; "
                f"it accepts {', '.join(accepted)}"
            ) from None
        return cls(**options)
