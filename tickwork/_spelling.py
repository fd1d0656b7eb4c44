"""Hints for names tickwork does not know: APScheduler 3 spellings and typos.

tickwork keeps asyncz's names, which differ from APScheduler 3's in a few places
(``mistrigger_grace_time``, ``start_at``, ``add_task`` ...). Code ported from APScheduler,
and plain typos, should fail with the name to use instead, not with a list to search::

    IntervalTrigger does not take 'misfire_grace_time' (APScheduler 3's name for
    'mistrigger_grace_time', an option of add_task); it takes: weeks, days, ...

Every place that refuses unknown keywords (triggers, the scheduler's options, task fields)
words its error with :func:`unknown_names_message`, so the hints stay in one table.

Where APScheduler 3's name means exactly tickwork's, it is taken as well:
:data:`ADD_TASK_SYNONYMS` (``add_task``), :data:`SCHEDULER_SYNONYMS` (the constructor and
``task_defaults``); :func:`either` refuses a value given under both names. Scheduler
methods of APScheduler 3 and asyncz raise an AttributeError that names the method to use
(:data:`SCHEDULER_METHODS`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from difflib import get_close_matches
from typing import Any, Final

from tickwork.exceptions import ConfigurationError

__all__ = [
    "ADD_TASK_SYNONYMS",
    "RENAMED",
    "SCHEDULER_METHODS",
    "SCHEDULER_SYNONYMS",
    "TASK_OPTIONS",
    "either",
    "hint",
    "unknown_names_message",
]

#: APScheduler 3 names -> tickwork's (asyncz's) names for the same thing.
RENAMED: Final[dict[str, str]] = {
    # add_task / Task options
    "misfire_grace_time": "mistrigger_grace_time",
    "func": "fn",
    "jobstore": "store",
    # trigger keywords
    "run_date": "run_at",
    "start_date": "start_at",
    "end_date": "end_at",
    # scheduler keywords
    "jobstores": "stores",
    "job_defaults": "task_defaults",
    # scheduler methods
    "add_job": "add_task",
    "get_job": "get_task",
    "get_jobs": "get_tasks",
    "modify_job": "update_task",
    "reschedule_job": "reschedule_task",
    "pause_job": "pause_task",
    "resume_job": "resume_task",
    "remove_job": "delete_task",
    "remove_all_jobs": "remove_all_tasks",
    "add_jobstore": "add_store",
    "remove_jobstore": "remove_store",
    "scheduled_job": "add_task",
    # events
    "EVENT_JOB_ADDED": "TASK_ADDED",
    "EVENT_JOB_REMOVED": "TASK_REMOVED",
    "EVENT_JOB_MODIFIED": "TASK_MODIFIED",
    "EVENT_JOB_SUBMITTED": "TASK_SUBMITTED",
    "EVENT_JOB_MAX_INSTANCES": "TASK_MAX_INSTANCES",
    "EVENT_JOB_EXECUTED": "TASK_EXECUTED",
    "EVENT_JOB_ERROR": "TASK_ERROR",
    "EVENT_JOB_MISSED": "TASK_MISSED",
}

#: The keywords of ``add_task`` that are options of the task rather than of its trigger.
#: ``add_task`` passes every keyword it does not know to the trigger, so a misspelt task
#: option reaches the trigger; the hint then says where the right spelling belongs.
TASK_OPTIONS: Final[frozenset[str]] = frozenset(
    {
        "args",
        "kwargs",
        "id",
        "name",
        "mistrigger_grace_time",
        "coalesce",
        "max_instances",
        "next_run_time",
        "store",
        "executor",
        "replace_existing",
        "timeout",
        "retries",
        "retry_delay",
        "retry_backoff",
        "retry_on",
        "cooldown",
        "leader_only",
        "tags",
    }
)


#: APScheduler 3's keywords of ``add_job`` that ``add_task`` takes as another name for
#: its own (``fn`` is asyncz's older name of ``fn_or_task``). Only looked at when the
#: trigger refused a keyword, so the common ``add_task`` call pays nothing for them.
ADD_TASK_SYNONYMS: Final[dict[str, str]] = {
    "fn": "fn_or_task",
    "func": "fn_or_task",
    "misfire_grace_time": "mistrigger_grace_time",
    "jobstore": "store",
}

#: APScheduler 3's keywords of the scheduler's constructor, and of its ``job_defaults``,
#: taken as tickwork's.
SCHEDULER_SYNONYMS: Final[dict[str, str]] = {
    "jobstores": "stores",
    "job_defaults": "task_defaults",
    "misfire_grace_time": "mistrigger_grace_time",
}

#: Scheduler methods of APScheduler 3 and asyncz that tickwork has under another name, or
#: not at all: what to use instead (the AttributeError of such a name says it).
SCHEDULER_METHODS: Final[dict[str, str]] = {
    **{
        old: f"APScheduler 3's {old}() is {RENAMED[old]}() in tickwork"
        for old in (
            "add_job",
            "get_job",
            "get_jobs",
            "modify_job",
            "reschedule_job",
            "pause_job",
            "resume_job",
            "remove_job",
            "remove_all_jobs",
            "add_jobstore",
            "remove_jobstore",
        )
    },
    "scheduled_job": "APScheduler 3's scheduled_job decorator is add_task() used as a "
    "decorator in tickwork: @scheduler.add_task(trigger=..., ...)",
    "print_jobs": "APScheduler 3's print_jobs has no counterpart: get_task_infos() returns "
    "a dict per task to print or log",
    "configure": "APScheduler 3's configure() has no counterpart: give the options as "
    "keywords of the scheduler's constructor (stores=, executors=, task_defaults=, ...)",
    "setup": "asyncz's setup() has no counterpart: give the options as keywords of the "
    "scheduler's constructor (stores=, executors=, task_defaults=, ...)",
    "lookup_task": "asyncz's lookup_task(id, store) is get_task(id, store) in tickwork "
    "(it returns None for an unknown id)",
}


def either(
    name: str,
    value: Any,
    old: str,
    old_value: Any,
    absent: Any = None,
    error: type[ConfigurationError] = ConfigurationError,
) -> Any:
    """The value given as ``name`` or as ``old`` (APScheduler 3's name for it); ``absent``
    is the value of one not given. Given both, ``error`` names both."""
    if old_value is absent:
        return value
    if value is not absent:
        raise error(
            f"give {name!r} or {old!r} (APScheduler 3's name for it), not both: got "
            f"{name}={value!r} and {old}={old_value!r}"
        )
    return old_value


def hint(name: str, known: Collection[str]) -> str:
    """A parenthesised hint for the unknown ``name`` ("" when nothing fits).

    Checked in order: APScheduler 3's name for something tickwork spells otherwise, a
    close match among ``known`` (a typo), a close match among the task options of
    ``add_task`` (a misspelt option that ended up among the trigger's keywords).
    """
    renamed = RENAMED.get(name)
    if renamed is not None:
        where = _where(renamed, known)
        return f" (APScheduler 3's name for {renamed!r}{', ' + where if where else ''})"
    close = get_close_matches(name, known, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    # A typo of an APScheduler 3 name ("misfire_grace") still finds tickwork's name.
    close = get_close_matches(name, [*TASK_OPTIONS.difference(known), *RENAMED], n=1)
    if close:
        meant = RENAMED.get(close[0], close[0])
        where = _where(meant, known)
        return f" (did you mean {meant!r}?{' It is ' + where if where else ''})"
    return ""


def _where(name: str, known: Collection[str]) -> str:
    """Where ``name`` belongs when the caller does not take it: "" when it does, or when
    it is no task option either (a scheduler method, say)."""
    if name in known or name not in TASK_OPTIONS:
        return ""
    return "an option of add_task"


def unknown_names_message(owner: str, unknown: Iterable[str], known: Iterable[str]) -> str:
    """``"<owner> does not take 'x' (hint), 'y'; it takes: a, b"``: only the unknown
    names, each with its hint, then what ``owner`` does take (in the given order; "it
    takes no options" when that is nothing)."""
    accepted = list(known)
    names = ", ".join(f"{name!r}{hint(name, accepted)}" for name in unknown)
    takes = f"it takes: {', '.join(accepted)}" if accepted else "it takes no options"
    return f"{owner} does not take {names}; {takes}"
