"""The DST rules of tickwork's triggers, one runnable example each.

Run it with tickwork installed (from a checkout: ``PYTHONPATH=. python
docs/examples/dst_rules.py``); tests/triggers/test_dst.py runs it too.
Each function asks a trigger for its fire times around a clock change and checks them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from tickwork.triggers import BaseTrigger, CronTrigger, IntervalTrigger

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def fire_times(trigger: BaseTrigger, now: datetime, count: int) -> list[datetime]:
    """The trigger's next ``count`` fire times from ``now``, as the scheduler asks."""
    times: list[datetime] = []
    previous = None
    while len(times) < count:
        previous = trigger.get_next_trigger_time(UTC, previous, now)
        assert previous is not None
        times.append(previous)
    return times


def gap_fires_once_at_the_end_of_the_gap() -> None:
    """02:30 does not exist in Berlin on 2026-03-29 (02:00 jumps to 03:00): the daily
    02:30 run happens once that day, at 03:00 CEST."""
    daily = CronTrigger(hour=2, minute=30, timezone=BERLIN)
    times = fire_times(daily, datetime(2026, 3, 28, tzinfo=BERLIN), 3)
    assert [t.isoformat() for t in times] == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",  # the first instant after the gap
        "2026-03-30T02:30:00+02:00",
    ]


def repeated_time_fires_once_at_its_first_occurrence() -> None:
    """01:30 happens twice in New York on 2026-11-01 (02:00 EDT falls back to 01:00
    EST): the daily 01:30 run happens once, at 01:30 EDT (fold=0)."""
    daily = CronTrigger.from_crontab("30 1 * * *", timezone=NEW_YORK)
    times = fire_times(daily, datetime(2026, 10, 31, 12, tzinfo=NEW_YORK), 2)
    assert [t.isoformat() for t in times] == [
        "2026-11-01T01:30:00-04:00",  # EDT; not again at 01:30 EST
        "2026-11-02T01:30:00-05:00",
    ]
    assert times[0].fold == 0


def wildcard_hour_fires_on_every_real_occurrence() -> None:
    """An hourly schedule follows real time: 01:00 EDT, then 01:00 EST an hour later."""
    hourly = CronTrigger.from_crontab("0 * * * *", timezone=NEW_YORK)
    times = fire_times(hourly, datetime(2026, 11, 1, 0, 30, tzinfo=NEW_YORK), 3)
    assert [t.isoformat() for t in times] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",  # the repeated hour, a real hour later
        "2026-11-01T02:00:00-05:00",
    ]
    quarterly = CronTrigger.from_crontab("*/15 * * * *", timezone=NEW_YORK)
    times = fire_times(quarterly, datetime(2026, 11, 1, 5, 0, tzinfo=UTC), 9)
    # Subtract in UTC: between two datetimes of the same zone Python subtracts wall times.
    steps = {b.astimezone(UTC) - a.astimezone(UTC) for a, b in pairwise(times)}
    assert steps == {timedelta(minutes=15)}


def interval_is_elapsed_time() -> None:
    """An interval counts elapsed seconds: a 1-hour interval is 3600 s apart through the
    change, even though the wall clock shows 01:xx twice."""
    start = datetime(2026, 11, 1, 0, 15, tzinfo=NEW_YORK)
    hourly = IntervalTrigger(hours=1, start_at=start)
    times = fire_times(hourly, start, 4)
    seconds = {(b.astimezone(UTC) - a.astimezone(UTC)).total_seconds() for a, b in pairwise(times)}
    assert seconds == {3600.0}
    assert [t.astimezone(NEW_YORK).strftime("%H:%M %Z") for t in times] == [
        "00:15 EDT",
        "01:15 EDT",
        "01:15 EST",
        "02:15 EST",
    ]


def results_are_aware_increasing_and_within_bounds() -> None:
    """Every fire time is aware, strictly later than the one before (compared in UTC),
    never before start_at, and the trigger ends (None) after end_at."""
    trigger = CronTrigger(
        minute="*/20",
        start_at=datetime(2026, 11, 1, 0, 50, tzinfo=NEW_YORK),
        end_at=datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NEW_YORK),  # 01:30 EST
        timezone=NEW_YORK,
    )
    times: list[datetime] = []
    previous = None
    while (
        previous := trigger.get_next_trigger_time(UTC, previous, datetime(2026, 1, 1, tzinfo=UTC))
    ) is not None:
        assert previous.tzinfo is not None
        assert not times or previous.astimezone(UTC) > times[-1].astimezone(UTC)
        times.append(previous)
    assert [t.strftime("%H:%M %Z") for t in times] == [
        "01:00 EDT",
        "01:20 EDT",
        "01:40 EDT",
        "01:00 EST",
        "01:20 EST",
    ]


RULES = [
    gap_fires_once_at_the_end_of_the_gap,
    repeated_time_fires_once_at_its_first_occurrence,
    wildcard_hour_fires_on_every_real_occurrence,
    interval_is_elapsed_time,
    results_are_aware_increasing_and_within_bounds,
]

if __name__ == "__main__":
    for rule in RULES:
        rule()
        print(f"ok: {rule.__name__.replace('_', ' ')}")
