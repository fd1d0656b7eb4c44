"""Triggers decide *when* a task runs. One module per trigger; the contract is
:class:`~tickwork.triggers.base.BaseTrigger`."""

from __future__ import annotations

import functools
import inspect
from datetime import tzinfo
from typing import Any

from tickwork._registry import Registry
from tickwork.exceptions import ConfigurationError, InvalidTriggerError
from tickwork.triggers._shared import SharedTriggers
from tickwork.triggers.base import BaseTrigger
from tickwork.triggers.combining import AndTrigger, OrTrigger
from tickwork.triggers.cron import CronTrigger
from tickwork.triggers.date import DateTrigger
from tickwork.triggers.interval import IntervalTrigger
from tickwork.triggers.shutdown import ShutdownTrigger

__all__ = [
    "AndTrigger",
    "BaseTrigger",
    "CronTrigger",
    "DateTrigger",
    "IntervalTrigger",
    "OrTrigger",
    "ShutdownTrigger",
    "build_trigger",
    "create_trigger",
    "trigger_registry",
]

#: Triggers built by create_trigger that tasks share (cleared when an alias is registered).
shared_triggers = SharedTriggers()

#: Aliases accepted by ``add_task(trigger="...")``.
trigger_registry = Registry(
    "trigger",
    {
        "date": "tickwork.triggers.date:DateTrigger",
        "interval": "tickwork.triggers.interval:IntervalTrigger",
        "shutdown": "tickwork.triggers.shutdown:ShutdownTrigger",
        "cron": "tickwork.triggers.cron:CronTrigger",
        "and": "tickwork.triggers.combining:AndTrigger",
        "or": "tickwork.triggers.combining:OrTrigger",
    },
    on_register=lambda: shared_triggers.clear(),
)


def create_trigger(alias: str, **options: Any) -> BaseTrigger:
    """Build the trigger registered as ``alias`` from keyword options.

    A trigger that never changes once built (:attr:`BaseTrigger.shareable`) is handed out
    again for the same alias and keywords, so the tasks of ``add_task(fn, "interval",
    minutes=5)`` share one instance (see :mod:`tickwork.triggers._shared`).

    Raises :class:`~tickwork.exceptions.UnknownAliasError` for an unknown alias and
    :class:`~tickwork.exceptions.InvalidTriggerError` for options the trigger does not take.
    """
    return build_trigger(alias, options)


def build_trigger(
    alias: str, options: dict[str, Any], default_zone: tzinfo | None = None
) -> BaseTrigger:
    """:func:`create_trigger` for a scheduler: ``default_zone`` (the scheduler's zone) is
    given to triggers that take a ``timezone`` and were not given one. ``options`` is not
    changed."""
    shared = shared_triggers.get(alias, options, default_zone)
    if shared is not None:
        return shared
    given = options
    if (
        default_zone is not None
        and "timezone" not in options
        and _takes_timezone(trigger_registry.lookup(alias))
    ):
        options = {**options, "timezone": default_zone}
    try:
        trigger: BaseTrigger = trigger_registry.create(alias, options)
    except InvalidTriggerError:
        raise
    except ConfigurationError as exc:
        if type(exc) is ConfigurationError:
            raise InvalidTriggerError(str(exc)) from None
        raise
    if trigger.shareable:
        shared_triggers.put(alias, given, default_zone, trigger)
    return trigger


@functools.lru_cache(maxsize=64)
def _takes_timezone(cls: type) -> bool:
    # A trigger class's signature doesn't change.
    return "timezone" in inspect.signature(cls).parameters
