"""Calendar intervals: every N months (or years, weeks, days) at one wall-clock time.

APScheduler 3's ``calendarinterval`` trigger, with tickwork's rules for month ends and
daylight saving time. Run it: ``PYTHONPATH=. python docs/examples/calendar_interval.py``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from tickwork import BackgroundScheduler, FakeClock
from tickwork.triggers import CalendarIntervalTrigger

BERLIN = ZoneInfo("Europe/Berlin")


def send_invoices() -> None:
    """The task: bill every customer."""


# Month ends clamp: a schedule anchored on 31 January runs on the last day of the
# shorter months, and is back on the 31st whenever the month has one.
monthly = CalendarIntervalTrigger(months=1, hour=9, start_at=date(2027, 1, 31), timezone=BERLIN)
runs, previous = [], None
for _ in range(4):
    previous = monthly.get_next_trigger_time(BERLIN, previous, datetime(2027, 1, 1, tzinfo=UTC))
    assert previous is not None
    runs.append(previous.strftime("%d %b %H:%M %Z"))
assert runs == ["31 Jan 09:00 CET", "28 Feb 09:00 CET", "31 Mar 09:00 CEST", "30 Apr 09:00 CEST"]

# The same wall-clock time through DST: a daily 02:30 run happens on the night the clocks
# skip 02:00-03:00 too, at 03:00, the end of the gap (APScheduler 3 skips that day).
nightly = CalendarIntervalTrigger(days=1, hour=2, minute=30, timezone=BERLIN)
first = nightly.get_next_trigger_time(BERLIN, None, datetime(2026, 3, 28, 1, tzinfo=BERLIN))
assert first is not None
second = nightly.get_next_trigger_time(BERLIN, first, first)
assert [first.isoformat(), str(second)] == [
    "2026-03-28T02:30:00+01:00",
    "2026-03-29 03:00:00+02:00",
]

# By alias, on a scheduler: every three months on the 15th at 06:00, the scheduler's zone.
scheduler = BackgroundScheduler(timezone=BERLIN, clock=FakeClock(datetime(2026, 1, 10, tzinfo=UTC)))
scheduler.add_task(
    send_invoices, "calendarinterval", months=3, hour=6, start_at="2026-01-15", id="invoices"
)
assert [run.date() for run in scheduler.preview_task_runs("invoices", 3)] == [
    date(2026, 1, 15),
    date(2026, 4, 15),
    date(2026, 7, 15),
]
print("ok: calendar intervals")
