"""Planner.decide: the single-due-run fast path gives the same answer as the
general rule (due_run_times, coalesce, grace) in every case."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from tickwork.schedulers._planner import MAX_CATCH_UP, Planner
from tickwork.tasks import Task
from tickwork.triggers import CronTrigger, DateTrigger, IntervalTrigger

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


# -- coalescing a long backlog: one run, a handful of trigger calls ------------------------


class CountingInterval(IntervalTrigger):
    """An interval trigger counting the calls of ``get_next_trigger_time``."""

    __slots__ = ("calls",)

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.calls = 0

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        self.calls += 1
        return super().get_next_trigger_time(timezone, previous_time, now)


class CountingCron(CronTrigger):
    """A cron trigger counting the calls of ``get_next_trigger_time``."""

    __slots__ = ("calls",)

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.calls = 0

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        self.calls += 1
        return super().get_next_trigger_time(timezone, previous_time, now)


BERLIN = ZoneInfo("Europe/Berlin")
#: Berlin springs forward at 01:00 UTC on 2026-03-29: a day's backlog up to noon that
#: day crosses the change.
CHANGE_DAY_NOON = datetime(2026, 3, 29, 12, 0, 0, 300_000, tzinfo=UTC)


@pytest.mark.parametrize(
    "make",
    [
        lambda: CountingInterval(seconds=1, timezone=UTC),
        lambda: CountingInterval(seconds=1, start_at=NOW - timedelta(days=3), timezone=UTC),
        lambda: CountingInterval(seconds=1, start_at=NOW - timedelta(days=3), timezone=BERLIN),
        lambda: CountingCron(second="*", timezone=BERLIN),
    ],
    ids=["interval", "interval with start_at", "interval in Berlin", "cron every second"],
)
@pytest.mark.parametrize("grace", [None, 1.0, 3600.0])
@pytest.mark.parametrize("now", [NOW, CHANGE_DAY_NOON], ids=["march 1", "DST change day"])
def test_a_day_behind_folds_into_one_run_in_a_few_calls(
    make: object, grace: float | None, now: datetime
) -> None:
    trigger = make()  # type: ignore[operator]
    first = now.replace(microsecond=0) - timedelta(days=1)
    task = make_task(trigger, first, True, grace)
    runs, missed, next_time = Planner(UTC).decide(task, now)
    # 86,400 overdue fire times fold into one run, the latest (on time whatever the
    # grace: it is less than a second late), and the next run is after now.
    assert missed == []
    assert [run.astimezone(UTC) for run in runs] == [now.replace(microsecond=0)]
    assert next_time is not None
    assert next_time > now
    assert next_time - runs[0] == timedelta(seconds=1)
    # decide's own call, fold's call from the latest fire time: not one per fire time.
    assert trigger.calls < 10


def test_advance_past_a_day_in_a_few_calls() -> None:
    trigger = CountingInterval(seconds=1, start_at=NOW - timedelta(days=3), timezone=BERLIN)
    task = make_task(trigger, NOW - timedelta(days=1), True, None)
    assert Planner(UTC).advance_past(task, NOW) == NOW + timedelta(seconds=1)
    assert trigger.calls < 10
