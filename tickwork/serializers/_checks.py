"""Checks of a task state read back from a store: every field's type and range.

Why at load: a record whose bytes parse but hold wrong types (``"trigger": 5``,
``max_instances: "x"``, a ``next_run_time`` that is a string) would otherwise load, and
fail later inside a scheduler's processing pass, where it stops every other task of its
store. Refused at load with an error naming the field and the value, it is one broken
record: the store logs it once and skips it (see ``_broken.py``).

What is refused is what cannot run: wrong types, values outside a field's meaning
(negative, NaN, not positive) and intervals that cannot advance. Values an earlier
tickwork wrote and that still run (a grace time of 0 or infinity, a jitter as long as
the interval) load, so stored tasks keep loading across upgrades.

Two parts, both cheap where the data is what the serializers write:

* the task's fields: ``Task.__setstate__`` compares their exact types inline (it reads
  them anyway) and only when that says no calls :func:`check_task_fields`, which
  decides and words the error;
* the trigger: :func:`check_trigger`, called by the serializers once the task is built,
  checks the attributes of tickwork's own trigger classes with ``type(x) is ...``
  tests first, the careful ones only for what is not of the usual type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from tickwork._task_fields import UNSET
from tickwork.exceptions import InvalidTaskError, InvalidTriggerError
from tickwork.triggers.base import BaseTrigger
from tickwork.triggers.combining import AndTrigger, OrTrigger
from tickwork.triggers.cron import CronTrigger
from tickwork.triggers.date import DateTrigger
from tickwork.triggers.delay import DelayTrigger
from tickwork.triggers.interval import IntervalTrigger
from tickwork.triggers.shutdown import ShutdownTrigger

__all__ = ["TRIGGER_CHECKS", "check_task_fields", "check_trigger", "short_repr"]

#: The zone types the serializers decode; their ``utcoffset()`` is never None.
_ZONES = frozenset({ZoneInfo, timezone})
_ZERO = timedelta(0)
#: The longest interval (the IntervalTrigger constructor's bound): 1000 years. Longer
#: ones leave no room for fire times before the year 9999.
_LONGEST = timedelta(days=365_250)
#: An interval of at most ``_LONGEST`` can advance from any time before this year; from
#: later ones the check is made (by subtraction: a rare, slower case).
_SAFE_YEAR = datetime.max.year - _LONGEST.days // 365 - 2
#: The latest time a fire time may lie at: a day before ``datetime.max``, so it can be
#: expressed in any zone (UTC offsets are below a day).
_LATEST = datetime.max - timedelta(days=1)


class _Bad(Exception):
    """A trigger attribute that fails its check: ``path`` says where (``".interval"``),
    relative to the trigger being checked, until a combination prefixes its own step
    (``".triggers[1]"``)."""

    def __init__(self, path: str, value: object, rule: str) -> None:
        super().__init__(rule)
        self.path = path
        self.value = value
        self.rule = rule


def check_task_fields(state: Mapping[str, Any]) -> None:
    """Raise :class:`~tickwork.exceptions.InvalidTaskError` naming the first field of
    ``state`` (as ``Task.__getstate__`` writes it, trigger rebuilt) that is missing or
    holds a value a task cannot run with; return when every field is acceptable.

    ``Task.__setstate__`` calls it when its inline test of the exact types the
    serializers write says no: it decides (a subclass, an int grace time, a zone of
    another type are acceptable) and words the error.
    """
    for name, rule, is_valid in _FIELD_RULES:
        if name not in state:
            raise InvalidTaskError(f"field {name!r} is missing")
        value = state[name]
        if not is_valid(value):
            raise InvalidTaskError(f"field {name!r} = {short_repr(value)} {rule}")


def check_trigger(trigger: BaseTrigger, next_run_time: datetime | None) -> None:
    """Raise :class:`~tickwork.exceptions.InvalidTriggerError` naming the attribute and the
    value when a loaded task's trigger (rebuilt by its ``__setstate__``) holds a value it
    cannot fire with, or cannot advance from ``next_run_time``.

    Only tickwork's own trigger classes are checked, by exact class; a class tickwork
    does not know (a subclass of one of its own too) is left to its own ``__setstate__``.
    """
    check = TRIGGER_CHECKS.get(type(trigger))
    if check is None:
        return
    try:
        check(trigger, next_run_time)
    except _Bad as bad:
        raise InvalidTriggerError(
            f"trigger{bad.path} = {short_repr(bad.value)} {bad.rule} ({type(trigger).__name__})"
        ) from None
    except RecursionError:
        # Only pickle can build it: an AndTrigger among its own members (its repr would
        # recurse too, so it is not shown).
        raise InvalidTriggerError(
            "trigger nests its members too deeply or contains itself"
        ) from None


# -- task fields, carefully --------------------------------------------------------------


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def _is_id(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _is_bool(value: object) -> bool:
    return value is True or value is False or value is UNSET


def _is_count(value: object) -> bool:
    if value is UNSET:
        return True
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_grace(value: object) -> bool:
    if value is None or value is UNSET:
        return True
    # NaN fails the comparison; infinity (no limit) was accepted by earlier versions.
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _is_args(value: object) -> bool:
    return isinstance(value, tuple | list)


def _is_kwargs(value: object) -> bool:
    return isinstance(value, Mapping) and all(isinstance(key, str) for key in value)


def _is_run_time(value: object) -> bool:
    return value is None or value is UNSET or _is_aware(value)


def _is_trigger(value: object) -> bool:
    return isinstance(value, BaseTrigger) or value is UNSET


#: (field, what a valid value is, its check), in the order fields are reported. UNSET
#: (the run rules and next run time of a task not added yet) is accepted where a Task
#: holds it: ``Task.from_state`` copies such tasks too. No stored record holds it (a
#: serializer refuses to write it, and the object does not survive a pickle as itself).
_FIELD_RULES: tuple[tuple[str, str, Callable[[object], bool]], ...] = (
    ("id", "is not a non-empty string", _is_id),
    ("name", "is not a string", _is_text),
    ("fn", "is not a 'module:function' reference string", _is_text),
    ("trigger", "is not a trigger", _is_trigger),
    ("args", "is not a list or tuple of arguments", _is_args),
    ("kwargs", "is not a mapping with string keys", _is_kwargs),
    ("executor", "is not an executor alias (a string)", _is_text),
    ("coalesce", "is not True or False", _is_bool),
    ("max_instances", "is not an integer >= 1", _is_count),
    ("mistrigger_grace_time", "is not None or a number of seconds >= 0", _is_grace),
    ("next_run_time", "is not None or a timezone-aware datetime", _is_run_time),
)


# -- values shared by the triggers -----------------------------------------------------------


def _is_aware(value: object) -> bool:
    """An aware datetime: one whose zone gives an offset."""
    if type(value) is datetime and type(value.tzinfo) in _ZONES:
        return True
    if not isinstance(value, datetime) or value.tzinfo is None:
        return False
    try:
        return value.utcoffset() is not None
    except Exception:  # a custom zone that fails cannot place the time either
        return False


def _is_zone(value: object) -> bool:
    return type(value) in _ZONES or isinstance(value, tzinfo)


def _check_aware(value: object, path: str) -> None:
    if not _is_aware(value):
        raise _Bad(path, value, "is not a timezone-aware datetime")


def _check_jitter(jitter: object) -> None:
    if not (type(jitter) is timedelta and _ZERO <= jitter <= _LONGEST):
        raise _Bad(".jitter", jitter, f"is not None or a timedelta of 0 to {_LONGEST.days} days")


def _check_order(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end < start:
        raise _Bad(".end_at", end, f"is earlier than start_at {start.isoformat()}")


# -- each trigger ----------------------------------------------------------------------------


def _check_interval(trigger: Any, reference: datetime | None) -> None:
    """An IntervalTrigger; ``reference`` (the task's next run time) is a time it must be
    able to advance from. (Each trigger check takes one, for the combinations.)"""
    interval = trigger.interval
    if type(interval) is not timedelta or not _ZERO < interval <= _LONGEST:
        raise _Bad(
            ".interval", interval, f"is not a positive timedelta of at most {_LONGEST.days} days"
        )
    zone = trigger.timezone
    if type(zone) not in _ZONES and not _is_zone(zone):
        raise _Bad(".timezone", zone, "is not a time zone")
    start, end = trigger.start_at, trigger.end_at
    if start is not None:
        _check_aware(start, ".start_at")
    if end is not None:
        _check_aware(end, ".end_at")
        _check_order(start, end)
    if trigger.jitter is not None:
        _check_jitter(trigger.jitter)
    if reference is not None and reference.year > _SAFE_YEAR:
        _check_advance(interval, reference)
    if start is not None and start.year > _SAFE_YEAR:
        _check_advance(interval, start)


def _check_advance(interval: timedelta, moment: datetime) -> None:
    """Refuse an interval that cannot be added to ``moment`` within the calendar."""
    if moment.replace(tzinfo=None) > _LATEST - interval:
        raise _Bad(
            ".interval",
            interval,
            f"cannot advance from {moment.isoformat()}: the next fire time would lie "
            "past the year 9999",
        )


def _check_cron(trigger: Any, reference: datetime | None) -> None:
    """A CronTrigger (whose schedule cannot overflow: its search stops at year 9999)."""
    # The fields or crontab parsed in __setstate__ (it raises for bad ones).
    if trigger.crontab is None and not isinstance(trigger.fields, Mapping):
        raise _Bad(".fields", trigger.fields, "is not a mapping of cron fields")
    zone = trigger.timezone
    if zone is not None and type(zone) not in _ZONES and not _is_zone(zone):
        raise _Bad(".timezone", zone, "is not None or a time zone")
    # Without a zone of its own, naive bounds are read in the scheduler's zone.
    check = _check_aware if zone is not None else _check_datetime
    start, end = trigger.start_at, trigger.end_at
    if start is not None:
        check(start, ".start_at")
    if end is not None:
        check(end, ".end_at")
        if start is not None and (start.tzinfo is None) == (end.tzinfo is None):
            _check_order(start, end)
    if trigger.jitter is not None:
        _check_jitter(trigger.jitter)


def _check_delay(trigger: Any, reference: datetime | None) -> None:
    """A DelayTrigger: a positive delay (its ``spacing`` follows from it), a zone, an
    aware ``start_at``."""
    delay = trigger.delay
    if type(delay) is not timedelta or not _ZERO < delay <= _LONGEST:
        raise _Bad(".delay", delay, f"is not a positive timedelta of at most {_LONGEST.days} days")
    zone = trigger.timezone
    if type(zone) not in _ZONES and not _is_zone(zone):
        raise _Bad(".timezone", zone, "is not a time zone")
    if trigger.start_at is not None:
        _check_aware(trigger.start_at, ".start_at")
    if reference is not None and reference.year > _SAFE_YEAR:
        _check_advance(delay, reference)


def _check_datetime(value: object, path: str) -> None:
    if not isinstance(value, datetime):
        raise _Bad(path, value, "is not a datetime")


def _check_date(trigger: Any, reference: datetime | None) -> None:
    """A DateTrigger (``run_at`` None: it fires when first asked)."""
    run_at, zone = trigger.run_at, trigger.timezone
    if run_at is not None and not (type(run_at) is datetime and type(run_at.tzinfo) in _ZONES):
        _check_aware(run_at, ".run_at")
    if type(zone) not in _ZONES and not _is_zone(zone):
        raise _Bad(".timezone", zone, "is not a time zone")


def _check_nothing(trigger: Any, reference: datetime | None) -> None:
    """A trigger without state (ShutdownTrigger)."""


def _check_combination(trigger: Any, reference: datetime | None) -> None:
    """An AndTrigger or OrTrigger: each member is checked as a trigger of its own."""
    members = trigger.triggers
    if type(members) is not list or not members:
        raise _Bad(".triggers", members, "is not a non-empty list of triggers")
    for index, member in enumerate(members):
        check = TRIGGER_CHECKS.get(type(member))
        try:
            if check is not None:
                check(member, reference)
            elif not isinstance(member, BaseTrigger):
                raise _Bad("", member, "is not a trigger")
        except _Bad as bad:
            bad.path = f".triggers[{index}]{bad.path}"
            raise
    if trigger.jitter is not None:
        _check_jitter(trigger.jitter)


#: The check of each trigger class tickwork ships, by exact class: ``check(trigger,
#: next_run_time)`` raises (an internal exception: :func:`check_trigger` words it).
TRIGGER_CHECKS: dict[type, Callable[[Any, datetime | None], None]] = {
    IntervalTrigger: _check_interval,
    CronTrigger: _check_cron,
    DateTrigger: _check_date,
    DelayTrigger: _check_delay,
    ShutdownTrigger: _check_nothing,
    AndTrigger: _check_combination,
    OrTrigger: _check_combination,
}


def short_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages; a value whose
    ``repr`` fails (anything may come out of a pickle) is named by its type."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
