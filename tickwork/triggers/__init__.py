"""Triggers decide *when* a task runs. One module per trigger; the contract is
:class:`~tickwork.triggers.base.BaseTrigger`."""

from __future__ import annotations

from typing import Any

from tickwork._registry import Registry
from tickwork.exceptions import ConfigurationError, InvalidTriggerError
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
    "create_trigger",
    "trigger_registry",
]

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
)


def create_trigger(alias: str, **options: Any) -> BaseTrigger:
    """Build the trigger registered as ``alias`` from keyword options.

    Raises :class:`~tickwork.exceptions.UnknownAliasError` for an unknown alias and
    :class:`~tickwork.exceptions.InvalidTriggerError` for options the trigger does not take.
    """
    try:
        trigger: BaseTrigger = trigger_registry.create(alias, options)
    except InvalidTriggerError:
        raise
    except ConfigurationError as exc:
        if type(exc) is ConfigurationError:
            raise InvalidTriggerError(str(exc)) from None
        raise
    return trigger
