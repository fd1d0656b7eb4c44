"""Planner.decide: the single-due-run fast path gives the same answer as the
general rule (due_run_times, coalesce, grace) in every case."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from tickwork.schedulers._planner import MAX_CATCH_UP, Planner
from tickwork.tasks import Task
from tickwork.triggers import DateTrigger, IntervalTrigger

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _noop() -> None:
    """The task body; never run here."""


def general_rule(
    task: Task, now: datetime
) -> tuple[list[datetime], list[datetime], datetime | None]:
    """What decide answered before it had a fast path."""
    run_times, next_time = task.due_run_times(UTC, now, MAX_CATCH_UP)
    if not run_times:
        return [], [], task.next_run_time
    if task.coalesce:
        run_times = run_times[-1:]
    grace = task.mistrigger_grace_time
    if grace is None:
        return run_times, [], next_time
    on_time = [t for t in run_times if (now - t).total_seconds() <= grace]
    missed = [t for t in run_times if (now - t).total_seconds() > grace]
    return on_time, missed, next_time


def make_task(trigger: object, first: datetime | None, coalesce: bool, grace: float | None) -> Task:
    task = Task(
        _noop,
        trigger,  # type: ignore[arg-type]
        coalesce=coalesce,
        mistrigger_grace_time=grace,
        max_instances=1,
    )
    task.next_run_time = first
    return task


LATENESS = [None, -5.0, 0.0, 0.5, 1.0, 1.5, 9.0, 25.0]


@pytest.mark.parametrize(
    ("late", "coalesce", "grace", "kind"),
    list(itertools.product(LATENESS, [True, False], [None, 1.0, 10.0], ["interval", "date"])),
)
def test_decide_matches_the_general_rule(
    late: float | None, coalesce: bool, grace: float | None, kind: str
) -> None:
    processor = Planner(UTC)
    first = None if late is None else NOW - timedelta(seconds=late)
    anchor = first or NOW
    trigger = (
        IntervalTrigger(seconds=10, start_at=anchor, timezone=UTC)
        if kind == "interval"
        else DateTrigger(anchor)
    )
    expected = general_rule(make_task(trigger, first, coalesce, grace), NOW)
    assert processor.decide(make_task(trigger, first, coalesce, grace), NOW) == expected


def test_one_due_run_on_time_and_one_missed() -> None:
    processor = Planner(UTC)
    first = NOW - timedelta(seconds=0.5)
    trigger = IntervalTrigger(seconds=3600, start_at=first, timezone=UTC)
    on_time = make_task(trigger, first, True, 1.0)
    assert processor.decide(on_time, NOW) == ([first], [], first + timedelta(hours=1))
    late = make_task(trigger, first, True, 0.25)
    assert processor.decide(late, NOW) == ([], [first], first + timedelta(hours=1))


def test_several_due_runs_take_the_general_path() -> None:
    processor = Planner(UTC)
    first = NOW - timedelta(seconds=25)
    trigger = IntervalTrigger(seconds=10, start_at=first, timezone=UTC)
    every = make_task(trigger, first, False, None)
    runs, missed, next_time = processor.decide(every, NOW)
    assert runs == [first, first + timedelta(seconds=10), first + timedelta(seconds=20)]
    assert (missed, next_time) == ([], first + timedelta(seconds=30))
