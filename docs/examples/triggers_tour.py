"""Getting started: what each trigger fires, computed without a running scheduler.

Every trigger answers one question, get_next_trigger_time(timezone, previous, now); the
scheduler asks it after each run. Here we ask it directly to list the first fire times.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tickwork.triggers import (
    AndTrigger,
    BaseTrigger,
    CronTrigger,
    DateTrigger,
    IntervalTrigger,
    OrTrigger,
    ShutdownTrigger,
)

zone = ZoneInfo("Europe/Paris")
now = datetime(2026, 3, 2, 8, 0, tzinfo=zone)  # a Monday


def fire_times(trigger: BaseTrigger, count: int = 3) -> list[str]:
    times: list[str] = []
    previous = None
    while len(times) < count:
        previous = trigger.get_next_trigger_time(zone, previous, now)
        if previous is None:
            break
        times.append(previous.astimezone(zone).strftime("%a %H:%M"))
    return times


# date: once, at run_at ("now" when left out).
assert fire_times(DateTrigger(run_at=now + timedelta(hours=1))) == ["Mon 09:00"]

# interval: every fixed amount of elapsed time; the first run one interval from now,
# or on the grid start_at + k * interval.
assert fire_times(IntervalTrigger(minutes=90)) == ["Mon 09:30", "Mon 11:00", "Mon 12:30"]
assert fire_times(IntervalTrigger(hours=1, start_at=now - timedelta(minutes=15))) == [
    "Mon 08:45",
    "Mon 09:45",
    "Mon 10:45",
]

# cron: when the wall clock matches every field (docs/triggers.md has the details).
weekdays_at_nine = CronTrigger(day_of_week="mon-fri", hour=9, minute=0)
assert fire_times(weekdays_at_nine, 6) == [
    "Mon 09:00",
    "Tue 09:00",
    "Wed 09:00",
    "Thu 09:00",
    "Fri 09:00",
    "Mon 09:00",
]
assert fire_times(CronTrigger.from_crontab("*/20 8 * * *")) == [
    "Mon 08:00",
    "Mon 08:20",
    "Mon 08:40",
]

# and / or: combinations. "Every 30 minutes, but only at :30" / "at 12:00 or every 5 h".
half_past = AndTrigger([CronTrigger(minute="*/30"), CronTrigger(minute=30)])
assert fire_times(half_past) == ["Mon 08:30", "Mon 09:30", "Mon 10:30"]
noon_or_every_5h = OrTrigger([CronTrigger(hour=12, minute=0), IntervalTrigger(hours=5)])
assert fire_times(noon_or_every_5h) == ["Mon 12:00", "Mon 13:00", "Mon 18:00"]

# shutdown: never on the clock; the scheduler runs it once when it shuts down.
assert fire_times(ShutdownTrigger()) == []
