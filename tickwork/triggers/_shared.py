"""Triggers shared by the tasks built from the same alias and keywords.

``add_task(fn, "interval", minutes=5)`` a million times needs one trigger, not a million:
a trigger that never changes once built (``BaseTrigger.shareable``) is kept here under the
alias and keywords it was built from, and handed out again. That saves about 80 bytes and
the trigger's construction (keyword checks, unit arithmetic) on every such ``add_task``.

Keys compare plain values (str, int, float, bool, None) by type and value, and every other
value (and the scheduler's zone, given to triggers without one) by identity: ``True == 1`` and two equal datetimes in different zones must not find
each other's trigger. The entry keeps those objects alive, so an identity in a key is never
reused by another object while the entry exists.
"""

from __future__ import annotations

import threading
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tickwork.triggers.base import BaseTrigger

__all__ = ["SharedTriggers"]

_PLAIN = frozenset({str, int, float, bool, type(None)})

#: Key -> (trigger, the keyword values it was built from, kept alive for identity keys).
_Entry = tuple["BaseTrigger", tuple[Any, ...]]


class SharedTriggers:
    """A bounded map from (alias, keywords) to a shareable trigger built from them."""

    def __init__(self, max_entries: int = 1024) -> None:
        #: Beyond this many schedules the oldest entry goes (insertion order): code that
        #: builds a new datetime for every task must not grow the map without bound.
        self.max_entries = max_entries
        self._entries: dict[tuple[Any, ...], _Entry] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(alias: Any, options: dict[str, Any], zone: tzinfo | None = None) -> tuple[Any, ...]:
        """The key of a trigger built from ``alias`` and ``options``, with ``zone`` as the
        zone for a trigger not given one."""
        values = tuple(options.values())
        kinds = tuple(map(type, values))
        if type(alias) is str and _PLAIN.issuperset(kinds):
            # The common case, in C: plain values compare by type and value.
            return (alias, tuple(options), values, kinds, id(zone))
        parts: list[Any] = [type(alias), alias if type(alias) in _PLAIN else id(alias), id(zone)]
        for name, value in options.items():
            kind = type(value)
            parts += (name, kind, value if kind in _PLAIN else id(value))
        return tuple(parts)

    def get(self, alias: Any, options: dict[str, Any], zone: tzinfo | None) -> BaseTrigger | None:
        """The trigger kept for these arguments of :meth:`key`, or ``None``."""
        # The key's common case again, inline: this runs on every add_task with an alias.
        values = tuple(options.values())
        kinds = tuple(map(type, values))
        if type(alias) is str and _PLAIN.issuperset(kinds):
            entry = self._entries.get((alias, tuple(options), values, kinds, id(zone)))
        else:
            entry = self._entries.get(self.key(alias, options, zone))
        return None if entry is None else entry[0]

    def put(
        self, alias: Any, options: dict[str, Any], zone: tzinfo | None, trigger: BaseTrigger
    ) -> None:
        """Keep ``trigger``, built from these arguments of :meth:`key`. The entry holds the
        keyword values and the zone, which the key may name by identity."""
        key = self.key(alias, options, zone)
        with self._lock:
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (trigger, (*options.values(), zone))

    def clear(self) -> None:
        """Forget every trigger (an alias now names another class)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
