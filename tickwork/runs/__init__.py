"""Run records: what ran, when, for how long, and how it ended.

A :class:`RunRecord` is written when a run starts (outcome ``"running"``) and written
again, under the same ``run_id``, when it ends; runs that never start (missed, refused
for ``max_instances``) get one final record. Records live in a :class:`RunLog` of the
task's store (:mod:`tickwork.runs.base` is the contract; :mod:`tickwork.runs.memory`
the in-process log).

One rule makes the log safe to write from several schedulers at once: **the first final
outcome written for a run wins**. A ``running`` record may be replaced by a final one,
never the other way round, and a final record is never replaced. So a run that a dead
scheduler abandoned ends as ``"error"`` exactly once, whoever notices first, and a
start written late (after a quick run's end, in the same batch) changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, Literal, NamedTuple

__all__ = [
    "FINAL_OUTCOMES",
    "OUTCOMES",
    "Outcome",
    "RunRecord",
    "make_run_id",
    "parse_run_id",
    "utc_text",
]

Outcome = Literal["running", "success", "error", "timeout", "cancelled", "missed", "max_instances"]

#: Every outcome, in the order a dashboard would list them.
OUTCOMES: Final[tuple[Outcome, ...]] = (
    "running",
    "success",
    "error",
    "timeout",
    "cancelled",
    "missed",
    "max_instances",
)

#: The outcomes a run ends with (all but ``"running"``).
FINAL_OUTCOMES: Final[frozenset[str]] = frozenset(OUTCOMES) - {"running"}


class RunRecord(NamedTuple):
    """One attempt of one run of a task (immutable; ``record._replace(...)`` makes a
    changed copy).

    ``scheduled_run_time`` is the fire time the run is for; ``started_at`` and
    ``finished_at`` are when it actually ran (``None`` for runs that never started, and
    ``finished_at`` while it runs); ``duration`` is in seconds. ``error`` is
    ``"Type: message"`` of a failed run, ``traceback`` its text. ``scheduler`` is the
    identity of the scheduler that ran it (or decided not to), ``executor`` the alias of
    the executor it ran in.
    """

    run_id: str
    task_id: str
    task_name: str
    scheduled_run_time: datetime
    outcome: Outcome
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: float | None = None
    attempt: int = 1
    error: str | None = None
    traceback: str | None = None
    scheduler: str | None = None
    executor: str | None = None

    @property
    def finished(self) -> bool:
        """True when the record holds the run's final outcome."""
        return self.outcome != "running"


def make_run_id(task_id: str, scheduled_run_time: datetime, attempt: int = 1) -> str:
    """The id of an attempt of a run: ``"<task id>@<scheduled time, UTC>#<attempt>"``.

    Derived from what identifies the run, not random, so every scheduler of a fleet that
    talks about the same run (the one that ran it, the one that takes over its abandoned
    record, an engine such as Celery that receives it) names it the same way.
    """
    return f"{task_id}@{utc_text(scheduled_run_time)}#{attempt}"


def parse_run_id(run_id: str) -> tuple[str, datetime, int]:
    """The task id, scheduled time (UTC) and attempt a run id names (the inverse of
    :func:`make_run_id`). Raises :class:`~tickwork.exceptions.ConfigurationError`
    naming a string that is not a run id."""
    from tickwork.exceptions import ConfigurationError  # (tickwork.exceptions is light)

    task_id, at, rest = run_id.rpartition("@") if isinstance(run_id, str) else ("", "", "")
    when, hash_, attempt = rest.rpartition("#")
    try:
        if not (task_id and at and hash_ and when.endswith("Z")):
            raise ValueError(run_id)
        moment = datetime.fromisoformat(when[:-1]).replace(tzinfo=UTC)
        number = int(attempt)
        if number < 1:
            raise ValueError(run_id)
    except ValueError:
        raise ConfigurationError(
            f"{run_id!r} is not a run id; run ids look like "
            "'<task id>@2026-01-31T09:00:00Z#1' (RunRecord.run_id, event.run_id)"
        ) from None
    return task_id, moment, number


#: The last time :func:`utc_text` wrote, and its text. The runs of a burst share one
#: datetime object (triggers share their answers), so their ids cost one conversion, not
#: one each (converting and formatting is most of an id's cost).
_last_text: tuple[datetime | None, str] = (None, "")


def utc_text(moment: datetime) -> str:
    """``moment`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    global _last_text
    last = _last_text
    if last[0] is moment:
        return last[1]
    if moment.tzinfo is not UTC:  # (datetime.UTC is datetime.timezone.utc)
        moment = moment.astimezone(UTC)
    text = moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    _last_text = (moment, text)
    return text
