"""Migrating from asyncz and APScheduler 3: the differences that change what code does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tickwork import BackgroundScheduler, Task
from tickwork.exceptions import (
    ConfigurationError,
    SchedulerAlreadyRunningError,
    UnknownAliasError,
)
from tickwork.triggers import CronTrigger, DateTrigger, IntervalTrigger


def send_report() -> None:
    pass


# APScheduler 3:
#   scheduler = BackgroundScheduler(jobstores={...}, job_defaults={"misfire_grace_time": 30})
#   scheduler.add_job(send_report, "interval", hours=1, start_date=..., end_date=...)
# tickwork (the names asyncz uses too):
start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
scheduler = BackgroundScheduler(
    stores={"default": {"type": "memory"}},
    task_defaults={"mistrigger_grace_time": 30},
    timezone="UTC",
)
scheduler.add_task(
    send_report,
    "interval",
    hours=1,
    start_at=start,
    end_at=start + timedelta(days=30),
    id="report",
)
once = DateTrigger(run_at=start)
hourly = IntervalTrigger(hours=1, start_at=start, end_at=start + timedelta(days=30))
assert scheduler.get_task("report") is not None


# Crontab lines read as cron reads them: Sunday is 0 (and 7), and a day that matches
# either the day-of-month or the day-of-week field fires.
def next_times(trigger: CronTrigger, count: int) -> list[str]:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # a Sunday
    times: list[str] = []
    previous = None
    for _ in range(count):
        previous = trigger.get_next_trigger_time(UTC, previous, now)
        assert previous is not None
        times.append(previous.strftime("%a %d %b"))
    return times


assert next_times(CronTrigger.from_crontab("0 9 * * 0", timezone="UTC"), 2) == [
    "Sun 08 Mar",  # 0 is Sunday (asyncz and APScheduler 3 read it as Monday)
    "Sun 15 Mar",
]
assert next_times(CronTrigger.from_crontab("0 0 13 * fri", timezone="UTC"), 3) == [
    "Fri 06 Mar",  # every Friday ...
    "Fri 13 Mar",
    "Fri 20 Mar",  # ... and every 13th (asyncz and APScheduler 3: only Friday the 13th)
]
# The keyword constructor keeps APScheduler's meaning: every field must match,
# and day_of_week counts from Monday = 0.
friday_13th = CronTrigger(day=13, day_of_week="fri", timezone="UTC")
assert next_times(friday_13th, 2) == ["Fri 13 Mar", "Fri 13 Nov"]

# A second start() raises (asyncz counts starts and returns False).
scheduler.start()
try:
    scheduler.start()
except SchedulerAlreadyRunningError as error:
    print(f"refused: {error}")
else:
    raise AssertionError("a second start() must raise")

# An unknown trigger, store or executor alias raises at once, by name.
assert issubclass(UnknownAliasError, ConfigurationError)
assert issubclass(UnknownAliasError, ValueError)
for mistake in ({"store": "archive"}, {"executor": "processes"}):
    try:
        scheduler.add_task(send_report, "interval", hours=1, **mistake)
    except UnknownAliasError as error:
        print(f"refused: {error}")
    else:
        raise AssertionError(f"{mistake} must be refused")
try:
    scheduler.add_task(send_report, "intervall", hours=1)
except UnknownAliasError as error:
    print(f"refused: {error}")

# Task(..., scheduler=...) adds the task to that scheduler at once.
task = Task(send_report, CronTrigger(hour=7), id="morning", scheduler=scheduler)
assert scheduler.get_task("morning") is not None
scheduler.shutdown()
