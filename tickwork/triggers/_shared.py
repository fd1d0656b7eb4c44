"""Triggers shared by the tasks built from the same alias and keywords.

``add_task(fn, "interval", minutes=5)`` a million times needs one trigger, not a million:
a trigger that never changes once built (``BaseTrigger.shareable``) is kept here under the
alias and keywords it was built from, and handed out again. That saves about 80 bytes and
the trigger's construction (keyword checks, unit arithmetic) on every such ``add_task``.

Keys compare keyword values by type and value where equal values are interchangeable
(str, int, float, bool, None, timedelta, date); datetimes by value, fold and zone object
(two equal datetimes in different zones must not find each other's trigger); everything
else, and the scheduler's zone given to triggers without one, by identity. ``True == 1``,
but the types differ. An entry keeps the objects of its key alive, so an identity in a key
is never reused by another object while the entry exists.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tickwork.triggers.base import BaseTrigger

__all__ = ["SharedTriggers"]

_PLAIN = frozenset({str, int, float, bool, type(None)})

#: Types whose equal values are interchangeable (besides the plain ones).
_BY_VALUE = _PLAIN | {timedelta, date}


def _part(value: Any) -> Any:
    """How a keyword value appears in a key."""
    kind = type(value)
    if kind in _BY_VALUE:
        return value
    if kind is datetime:
        # Equal datetimes may lie in different zones, or on either side of a repeated
        # hour: same zone object, same fold and same wall time is the same value.
        return (value, id(value.tzinfo), value.fold)
    return id(value)


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
        parts: list[Any] = [type(alias), _part(alias), id(zone)]
        for name, value in options.items():
            parts += (name, type(value), _part(value))
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
