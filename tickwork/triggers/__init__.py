"""Triggers decide *when* a task runs. One module per trigger; the contract is
:class:`~tickwork.triggers.base.BaseTrigger`."""

from __future__ import annotations

import functools
import inspect
from datetime import tzinfo
from typing import Any

from tickwork._registry import Registry
from tickwork._spelling import RENAMED, unknown_names_message
from tickwork.exceptions import ConfigurationError, InvalidTriggerError
from tickwork.triggers._shared import SharedTriggers
from tickwork.triggers.base import BaseTrigger
from tickwork.triggers.calendarinterval import CalendarIntervalTrigger
from tickwork.triggers.combining import AndTrigger, OrTrigger
from tickwork.triggers.cron import CronTrigger
from tickwork.triggers.date import DateTrigger
from tickwork.triggers.delay import DelayTrigger
from tickwork.triggers.interval import IntervalTrigger
from tickwork.triggers.shutdown import ShutdownTrigger

__all__ = [
    "AndTrigger",
    "BaseTrigger",
    "CalendarIntervalTrigger",
    "CronTrigger",
    "DateTrigger",
    "DelayTrigger",
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
        "calendarinterval": "tickwork.triggers.calendarinterval:CalendarIntervalTrigger",
        "delay": "tickwork.triggers.delay:DelayTrigger",
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
        if type(exc) is ConfigurationError:  # (the registry's: keywords that do not bind)
            raise InvalidTriggerError(_keyword_error(alias, options, exc)) from None
        raise
    if trigger.shareable:
        shared_triggers.put(alias, given, default_zone, trigger)
    return trigger


def _keyword_error(alias: str, options: dict[str, Any], exc: ConfigurationError) -> str:
    """The error for keywords the trigger does not take: only the unknown ones, each with
    the spelling tickwork uses (``misfire_grace_time`` -> ``mistrigger_grace_time``) or the
    closest keyword, then the keywords it does take. Other binding errors as they are."""
    cls = trigger_registry.lookup(alias)
    parameters = inspect.signature(cls).parameters
    known = [
        name
        for name, p in parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    unknown = [name for name in options if name not in known]
    if not unknown:
        return str(exc)
    # The APScheduler 3 synonyms a trigger also takes (start_date ...) go unlisted.
    listed = [name for name in known if name not in RENAMED]
    return unknown_names_message(f"trigger {alias!r} ({cls.__name__})", unknown, listed)


@functools.lru_cache(maxsize=64)
def _takes_timezone(cls: type) -> bool:
    # A trigger class's signature doesn't change.
    return "timezone" in inspect.signature(cls).parameters
