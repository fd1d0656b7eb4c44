"""Cron field expressions, parsed into the :class:`~._cron_spec.CronSpec` that
:class:`CronTrigger` searches with.

Two parsers feed the same :class:`~._cron_spec.CronSpec`:

* :func:`parse_fields` reads the constructor's keyword fields, APScheduler-3 style;
* :func:`parse_crontab` reads a crontab line, leaning on croniter to validate and expand
  the five (or six) fields.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from tickwork.exceptions import InvalidTriggerError
from tickwork.triggers._cron_spec import CronSpec, Field

__all__ = ["FIELD_NAMES", "parse_crontab", "parse_fields", "with_defaults"]

#: Most significant first: the order APScheduler 3's default rule walks them in.
FIELD_NAMES = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")

_BOUNDS = {
    "year": (1970, 9999),
    "month": (1, 12),
    "day": (1, 31),
    "week": (1, 53),
    "day_of_week": (0, 6),
    "hour": (0, 23),
    "minute": (0, 59),
    "second": (0, 59),
}
# What a field left out becomes once a less significant field was given (hour=3 means
# 03:00:00, not every second of hour 3). week and day_of_week stay unrestricted.
_DEFAULTS = {"month": "1", "day": "1", "hour": "0", "minute": "0", "second": "0"}

# Spelt out: calendar.month_abbr and day_abbr follow the locale.
_MONTHS = {
    name: i
    for i, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_WEEKDAYS = {
    name: i for i, name in enumerate(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
}  # mon=0
_NAMES: dict[str, dict[str, int]] = {"month": _MONTHS, "day_of_week": _WEEKDAYS}
_ORDINALS = {"1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "last": -1}

_RANGE = re.compile(
    r"^(?:(?P<star>\*)|(?P<first>[a-z0-9]+)(?:-(?P<last>[a-z0-9]+))?)(?:/(?P<step>\d+))?$"
)
_NTH = re.compile(r"^(?P<nth>1st|2nd|3rd|4th|5th|last)\s+(?P<weekday>[a-z]+)$")


def with_defaults(given: Mapping[str, Any]) -> dict[str, str]:
    """Fill in the fields left out, APScheduler 3's way, as expression strings.

    Fields more significant than the least significant one given become ``*``; less
    significant ones their minimum (``hour=3`` is 03:00:00 every day). With nothing given
    every field is ``*`` (every second), as in APScheduler 3.
    """
    given_names = [name for name in FIELD_NAMES if given.get(name) is not None]
    least = FIELD_NAMES.index(given_names[-1]) if given_names else len(FIELD_NAMES)
    fields = {}
    for i, name in enumerate(FIELD_NAMES):
        value = given.get(name)
        if value is not None:
            fields[name] = _text(name, value)
        else:
            fields[name] = _DEFAULTS.get(name, "*") if i > least else "*"
    return fields


def parse_fields(fields: Mapping[str, str]) -> CronSpec:
    """Parse the eight constructor fields (as returned by :func:`with_defaults`).

    The same fields give the same (shared, read-only) :class:`CronSpec`: many tasks use
    one schedule, and every trigger loaded from a store is parsed again."""
    return _compile_fields(tuple(fields[name] for name in FIELD_NAMES))


@functools.lru_cache(maxsize=1024)
def _compile_fields(expressions: tuple[str, ...]) -> CronSpec:
    fields = dict(zip(FIELD_NAMES, expressions, strict=True))
    parsed = {name: _parse_field(name, expression) for name, expression in fields.items()}
    return CronSpec.build(parsed, day_or=False, described=fields)


def _text(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidTriggerError(f"{name}={value!r}: a cron field is an int or a string")
    text = str(value).strip().lower()
    if not text:
        raise InvalidTriggerError(f"{name}={value!r}: a cron field cannot be empty")
    return text


def _number(name: str, token: str, expression: str) -> int:
    names = _NAMES.get(name, {})
    if token in names:
        return names[token]
    if not token.isdigit():
        hint = f"; known names: {', '.join(names)}" if names else ""
        raise InvalidTriggerError(f"{name}={expression!r}: unknown value {token!r}{hint}")
    number = int(token)
    low, high = _BOUNDS[name]
    if not low <= number <= high:
        hint = " (0 is Monday, 6 is Sunday)" if name == "day_of_week" else ""
        raise InvalidTriggerError(
            f"{name}={expression!r}: {number} is out of range {low}-{high}{hint}"
        )
    return number


@functools.lru_cache(maxsize=4096)
def _parse_field(name: str, expression: str) -> Field:
    # Cached: Field is immutable, and "*" alone is common to most schedules (the year's
    # is 8,030 values, which every trigger would otherwise build again).
    low, high = _BOUNDS[name]
    values: set[int] = set()
    nth: set[tuple[int, int]] = set()
    last_day = False
    for raw_term in expression.split(","):
        term = raw_term.strip()
        if name in ("day", "day_of_week") and (match := _NTH.match(term)):
            weekday = _WEEKDAYS.get(match["weekday"])
            if weekday is None:
                raise InvalidTriggerError(
                    f"{name}={expression!r}: unknown weekday {match['weekday']!r}"
                )
            nth.add((weekday, _ORDINALS[match["nth"]]))
            continue
        if name == "day" and term == "last":
            last_day = True
            continue
        match = _RANGE.match(term)
        if match is None:
            raise InvalidTriggerError(f"{name}={expression!r}: cannot parse {term!r}")
        step = int(match["step"]) if match["step"] else 1
        if step == 0:
            raise InvalidTriggerError(f"{name}={expression!r}: the step must be at least 1")
        if match["star"]:
            first, last = low, high
        else:
            first = _number(name, match["first"], expression)
            # "5/10" runs from 5 to the field's maximum, as in APScheduler 3 and croniter.
            last = first if match["step"] is None else high
            if match["last"] is not None:
                last = _number(name, match["last"], expression)
            if first > last:
                raise InvalidTriggerError(
                    f"{name}={expression!r}: the range {term!r} runs backwards "
                    f"({first} > {last}); ranges do not wrap around"
                )
        values.update(range(first, last + 1, step))
    return Field(frozenset(values), frozenset(nth), last_day, expression.startswith("*"))


# ---------------------------------------------------------------------------------------
# crontab lines

_CRONTAB_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# The crontab's five fields, in line order, by their constructor names.
_CRONTAB_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
_CRON_WEEKDAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


def parse_crontab(expression: str) -> CronSpec:
    """Parse a crontab line: five fields, or six with the seconds *first*, or an @alias.

    croniter validates and expands each field (names, steps, ``L``, ``5#3``); this module
    adds what croniter lets through but cron does not mean: backward ranges (croniter
    wraps ``5-1`` around) and ``W`` (croniter silently drops it).
    """
    if not isinstance(expression, str):
        raise InvalidTriggerError(f"a crontab must be a string, got {expression!r}")
    return _compile_crontab(expression)


@functools.lru_cache(maxsize=1024)
def _compile_crontab(expression: str) -> CronSpec:
    """:func:`parse_crontab` for a string; the same line gives the same (shared,
    read-only) spec, as in :func:`parse_fields`."""
    # Imported here: croniter is only needed by crontab lines, and ``import tickwork``
    # should stay light.
    from croniter import CroniterError, croniter

    text = expression.strip().lower()
    text = _CRONTAB_ALIASES.get(text, text)
    if text.startswith("@"):
        known = ", ".join(_CRONTAB_ALIASES)
        raise InvalidTriggerError(f"crontab {expression!r}: unknown alias; known: {known}")
    parts = text.split()
    if len(parts) not in (5, 6):
        raise InvalidTriggerError(
            f"crontab {expression!r} has {len(parts)} fields; expected 5 "
            "(minute hour day month day_of_week) or 6 (second first)"
        )
    seconds = parts.pop(0) if len(parts) == 6 else "0"
    raw = dict(zip(_CRONTAB_FIELDS, parts, strict=True))
    raw["second"] = seconds
    for name, value in raw.items():
        _check_crontab_field(expression, name, value)
    try:
        expanded, nth_weekdays = croniter.expand(
            f"{seconds} {' '.join(parts)}", second_at_beginning=True
        )
    except CroniterError as exc:  # pragma: no cover - every field passed on its own
        raise InvalidTriggerError(f"crontab {expression!r}: {exc}") from None
    minute, hour, day, month, dow, second = expanded
    dom_values = {v for v in day if isinstance(v, int)}
    fields = {
        "year": _parse_field("year", "*"),
        "month": _expanded("month", month, raw),
        "day": Field(
            frozenset(range(1, 32)) if day == ["*"] else frozenset(dom_values),
            last_day="l" in day,
            star=raw["day"].startswith(("*", "?")),
        ),
        "week": _parse_field("week", "*"),
        "day_of_week": _crontab_weekdays(dow, nth_weekdays, raw["day_of_week"]),
        "hour": _expanded("hour", hour, raw),
        "minute": _expanded("minute", minute, raw),
        "second": _expanded("second", second, raw),
    }
    # Standard cron: when both day fields are restricted a day matching either one fires.
    day_or = not fields["day"].star and not fields["day_of_week"].star
    return CronSpec.build(fields, day_or=day_or, described={"crontab": expression})


def _check_crontab_field(expression: str, name: str, value: str) -> None:
    """Validate one field alone, so the error can name it."""
    from croniter import CroniterError, croniter

    problem = None
    if name == "day" and "w" in value:
        problem = "'W' (nearest weekday) is not supported"
    for first, last in re.findall(r"([a-z0-9]+)-([a-z0-9]+)", value):
        start, end = _cron_number(first), _cron_number(last)
        if name == "day_of_week" and last in ("sun", "0") and start:
            end = 7  # "fri-sun" means 5-7
        if start is not None and end is not None and start > end:
            problem = f"the range {first}-{last} runs backwards; ranges do not wrap around"
    if problem is None:
        line = ["*"] * 6  # seconds first, as croniter's second_at_beginning wants them
        line[("second", *_CRONTAB_FIELDS).index(name)] = value
        try:
            croniter.expand(" ".join(line), second_at_beginning=True)
        except CroniterError as exc:
            problem = str(exc)
    if problem is not None:
        raise InvalidTriggerError(f"crontab {expression!r}: {name} field {value!r}: {problem}")


def _cron_number(token: str) -> int | None:
    if token.isdigit():
        return int(token)
    return _MONTHS.get(token, _CRON_WEEKDAYS.get(token))


def _expanded(name: str, values: list[Any], raw: Mapping[str, str]) -> Field:
    low, high = _BOUNDS[name]
    found = range(low, high + 1) if values == ["*"] else values
    return Field(frozenset(int(v) for v in found), star=raw[name].startswith("*"))


def _crontab_weekdays(values: list[Any], nth_weekdays: Mapping[Any, set[Any]], raw: str) -> Field:
    def monday_first(cron_weekday: int) -> int:  # crontab: 0 and 7 are Sunday
        return (int(cron_weekday) + 6) % 7

    star = raw.startswith(("*", "?"))
    if nth_weekdays:
        # croniter refuses to mix "5#3" with plain weekdays, so these are all n-th ones.
        nth = frozenset(
            (monday_first(wd), -1 if n == "l" else int(n))
            for wd, ns in nth_weekdays.items()
            for n in ns
        )
        return Field(frozenset(), nth, star=star)
    plain = range(7) if values == ["*"] else (monday_first(v) for v in values)
    return Field(frozenset(plain), star=star)
